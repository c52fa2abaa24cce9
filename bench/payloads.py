"""Realistic Postmark inbound payloads for the benchmark, pre-built as templates.

Every payload is serialised to JSON once, before any timing starts. Three values must differ on
every request (Postmark's MessageID, the RFC Message-ID, and for replies the In-Reply-To that
points at an earlier request's Message-ID), so a template is kept as the JSON text split around
those three markers; a client only splices short strings in:

    P  -> Postmark MessageID   f"{pm_prefix}{i:012d}"          (uuid-shaped, unique per run)
    M  -> Message-ID token     f"{tag}-{i}"                     (this request's id)
    R  -> In-Reply-To token    f"{tag}-{i - k}"                 (the request k earlier)

Request number i uses template i % len(templates). A reply template at position t points k
requests back, at template t - k, which has the same sender (threading only follows a customer's
own Message-IDs), so the parent was sent (and, with k >= 64 and 8 clients, answered) long before.
"""

from __future__ import annotations

import base64
import json
import random
import uuid
from dataclasses import dataclass

MARK = {"P": "@@PMID@@", "M": "@@MID@@", "R": "@@RID@@"}
REPLY_MIN_BACK = 64  # far more than the number of requests in flight
REPLY_MAX_BACK = 1500

FIRST = ["Alice", "Bruno", "Chloé", "Dmitri", "Emma", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemal", "Lena",
         "Mateo", "Nadia", "Oskar", "Priya", "Quentin", "Rosa", "Sven", "Tariq", "Ulla", "Viktor", "Wen", "Ximena",
         "Yusuf", "Zoe", "Aarav", "Beatriz", "Connor", "Dalia", "Elif", "Felix"]
LAST = ["Nakamura", "Okafor", "Schmidt", "García", "Rossi", "Dubois", "Kowalski", "Andersson", "Haddad", "Silva",
        "Müller", "O'Brien", "Novak", "Jensen", "Petrov", "Tanaka", "Costa", "Lindqvist", "Moreau", "Kaur"]
DOMAINS = ["gmail.com", "outlook.com", "yahoo.co.uk", "proton.me", "icloud.com", "gmx.de", "hey.com",
           "fastmail.com", "acme-capital.com", "northwind.io", "blueharbor.fund", "quantflow.net"]
MSGID_HOSTS = {"gmail.com": "mail.gmail.com", "outlook.com": "AM6PR02MB4321.eurprd02.prod.outlook.com",
               "icloud.com": "icloud.com", "proton.me": "proton.me"}
CLIENTS = ["Apple Mail (2.3774.600.62)", "Microsoft Outlook 16.0", "Mozilla Thunderbird 128.4.2",
           "Gmail", "Proton Mail", "Spark 3.18"]

SUBJECTS = [
    "Cannot export my trades to CSV", "Two-factor code never arrives", "Wrong cost basis after stock split",
    "Deposit pending for three days", "Question about the annual statement", "App crashes when opening portfolio",
    "Dividends missing for March", "How do I close my account?", "Limit order executed at the wrong price",
    "Tax report shows duplicate entries", "Cannot link my bank account", "Chart does not load on Safari",
    "Withdrawal rejected without explanation", "Change of address and tax residency", "Margin call notification",
    "API key stopped working", "Fees charged twice this month", "Password reset link expired",
    "Crypto transfer stuck in review", "Referral bonus not credited",
]
SENTENCES = [
    "Since this morning the export button on the history page does nothing at all when I click it.",
    "I already tried logging out and back in, clearing the cache and using a private window.",
    "The same thing happens on my laptop and on my phone, so I don't think it is my browser.",
    "My accountant needs the file by Friday, so I would be very grateful for a quick answer.",
    "I noticed that the numbers on the summary page don't match what I see in the detailed view.",
    "Could you tell me whether this is a known problem and if there is a workaround in the meantime?",
    "I have attached nothing this time, but I can send screenshots if that helps you investigate.",
    "The error message says something went wrong, please try again later, and nothing else.",
    "Last month everything worked fine, so I assume something changed in a recent update.",
    "I am using the latest version of the app from the store, updated yesterday evening.",
    "When I contacted you about a similar issue in January it was fixed within a day, thanks again for that.",
    "Please note that my account is a joint account, in case that makes a difference.",
    "I would also like to know whether the fee shown in the confirmation email is final.",
    "The transaction reference shown in my bank statement is different from the one in your app.",
    "I read the help center article on this topic, but it describes screens that look different now.",
    "It would be great if you could confirm once the problem has been fixed on your side.",
    "My colleague who also uses your platform sees the same behaviour since the weekend.",
    "I have been a customer for four years and this is the first time I need to write to you.",
    "If you need my customer number or any other detail to find the account, just let me know.",
    "I tried again a few minutes ago and this time it failed with a different error code.",
    "The amount in question is not huge, but I would like to understand what happened.",
    "I could not find a phone number to call, so I hope email is the right way to reach you.",
    "By the way, the new dark mode looks great, well done to the team.",
    "Maybe it is related to the maintenance announced in the newsletter last week?",
]
LINKS = [
    ("https://raxx.app/help/exports", "help article about exports"),
    ("https://raxx.app/account/statements", "statements page"),
    ("https://status.raxx.app/incidents", "status page"),
    ("https://raxx.app/settings/security", "security settings"),
    ("https://www.example-bank.com/transfers?ref=7781", "my bank's transfer page"),
    ("https://drive.example.com/s/8f3kq0/screenshot.png", "a screenshot"),
]
HTML_HEAD = (
    '<html xmlns:o="urn:schemas-microsoft-com:office:office"><head><meta http-equiv="Content-Type" '
    'content="text/html; charset=utf-8"><style>p.MsoNormal{margin:0cm;font-size:11pt;font-family:Calibri,sans-serif}'
    'a:link,span.MsoHyperlink{mso-style-priority:99;color:#0563C1;text-decoration:underline}'
    'span.EmailStyle17{mso-style-type:personal-compose;font-family:"Calibri",sans-serif;color:windowtext}'
    '.MsoChpDefault{mso-style-type:export-only;font-family:"Calibri",sans-serif}'
    '@page WordSection1{size:612.0pt 792.0pt;margin:72.0pt 72.0pt 72.0pt 72.0pt}div.WordSection1{page:WordSection1}'
    '.signature{color:#666;font-size:9pt}</style></head>'
)


@dataclass(frozen=True)
class Customer:
    email: str
    name: str
    domain: str


@dataclass(frozen=True)
class Template:
    back: int          # 0 for a new conversation, else how many requests earlier the parent was sent
    parts: list        # [literal0, (kind, literal1), (kind, literal2), ...] as str; kind in "PMR"


@dataclass
class PayloadSet:
    templates: list[Template]
    mean_bytes: float
    replies: int

    def to_wrk_lines(self) -> str:
        """One template per line: `back<TAB>literal0\\x01Kliteral1\\x01K...` (JSON never holds raw \\x01/\\n)."""
        lines = []
        for t in self.templates:
            chunks = [t.parts[0]] + [kind + literal for kind, literal in t.parts[1:]]
            lines.append(f"{t.back}\t" + "\x01".join(chunks))
        return "\n".join(lines) + "\n"

    def encoded(self) -> list[tuple[int, bytes, list[tuple[str, bytes]]]]:
        return [(t.back, t.parts[0].encode(), [(k, lit.encode()) for k, lit in t.parts[1:]]) for t in self.templates]


def customers(rng: random.Random, count: int) -> list[Customer]:
    pool, seen = [], set()
    while len(pool) < count:
        first, last, domain = rng.choice(FIRST), rng.choice(LAST), rng.choice(DOMAINS)
        local = rng.choice([f"{first}.{last}", f"{first[0]}{last}", f"{first}{rng.randint(1, 99)}"])
        local = local.lower().replace("'", "").encode("ascii", "ignore").decode() or "user"
        email = f"{local}@{domain}"
        if email not in seen:
            seen.add(email)
            pool.append(Customer(email, f"{first} {last}", domain))
    return pool


def _paragraphs(rng: random.Random, count: int) -> list[str]:
    return [" ".join(rng.sample(SENTENCES, rng.randint(3, 5))) for _ in range(count)]


def _html(rng: random.Random, greeting: str, paras: list[str], quoted_paras: list[str], quote_line: str,
          name: str) -> str:
    body = [HTML_HEAD, '<body lang="EN-GB" style="word-wrap:break-word"><div dir="ltr" '
            'style="font-family:Arial,Helvetica,sans-serif;font-size:14px;color:#222222">',
            f'<p class="MsoNormal" style="margin:0 0 12px 0">{greeting}</p>']
    for idx, para in enumerate(paras):
        url, label = rng.choice(LINKS)
        words = para.split(" ")
        cut = rng.randint(3, max(4, len(words) - 3))
        linked = " ".join(words[:cut]) + f' (see <a href="{url}" target="_blank" style="color:#1a73e8">{label}</a>) ' \
            + " ".join(words[cut:])
        style = "margin:0 0 12px 0;line-height:1.5" if idx % 2 else "margin:0 0 12px 0"
        body.append(f'<p class="MsoNormal" style="{style}"><span style="font-size:11.0pt;font-family:&quot;Calibri&quot;,'
                    f'sans-serif;color:#1F497D">{linked}</span><o:p></o:p></p>')
    if rng.random() < 0.5:
        body.append('<ul style="margin-top:0">' + "".join(
            f'<li style="margin-left:15px">{s}</li>' for s in rng.sample(SENTENCES, 3)) + "</ul>")
    body.append(f'<p class="MsoNormal" style="margin:0 0 12px 0">Best regards,<br>{name}</p>'
                f'<div class="signature" style="color:#888888;font-size:12px">--<br>{name}<br>'
                f'<a href="tel:+441234567890" style="color:#888888">+44 1234 567 890</a> | '
                f'<a href="https://www.linkedin.com/in/example" style="color:#888888">LinkedIn</a></div></div>')
    body.append(f'<br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">{quote_line}<br></div>'
                '<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid '
                'rgb(204,204,204);padding-left:1ex">')
    for para in quoted_paras:
        body.append(f'<div style="font-family:Arial,sans-serif;font-size:13px"><p class="MsoNormal" style="margin:0 0 10px 0">'
                    f'<span style="font-size:10.0pt;font-family:&quot;Arial&quot;,sans-serif;color:#444444">{para}</span></p></div>')
    body.append("</blockquote></div>")
    body.append('<img src="https://t.example-mailer.com/open/8a7c2e.gif" width="1" height="1" alt="" '
                'style="display:none">')
    body.append("</body></html>")
    return "".join(body)


def build(count: int = 2000, customer_count: int = 300, seed: int = 1, reply_share: float = 1 / 3) -> PayloadSet:
    rng = random.Random(seed)
    pool = customers(rng, customer_count)
    meta: list[dict] = []  # per template: customer, msgid literal suffix, subject
    templates: list[Template] = []
    sizes: list[int] = []
    replies = 0
    for t in range(count):
        back = 0
        if t >= REPLY_MIN_BACK and rng.random() < reply_share:
            back = rng.randint(REPLY_MIN_BACK, min(t, REPLY_MAX_BACK))
        if back:
            parent = meta[t - back]
            cust, subject = parent["customer"], "Re: " + parent["subject"].removeprefix("Re: ")
            replies += 1
        else:
            parent, cust, subject = None, rng.choice(pool), rng.choice(SUBJECTS)
        host = MSGID_HOSTS.get(cust.domain, f"mail.{cust.domain}")
        msgid_suffix = f".{rng.getrandbits(48):012x}@{host}>"
        meta.append({"customer": cust, "subject": subject, "msgid_suffix": msgid_suffix})

        first = cust.name.split()[0]
        greeting = rng.choice(["Hello,", "Hi there,", "Dear support team,", "Good morning,", "Hi,"])
        paras = _paragraphs(rng, rng.randint(4, 6))
        quoted = _paragraphs(rng, rng.randint(2, 4))
        when = f"{rng.choice(['Mon', 'Tue', 'Wed', 'Thu', 'Fri'])}, {rng.randint(1, 28)} Nov 2026 at {rng.randint(8, 18)}:{rng.randint(10, 59)}"
        quote_line = (f"On {when}, Raxx Support &lt;support@raxx.app&gt; wrote:" if back
                      else f"On {when}, {first} &lt;{cust.email}&gt; wrote:")
        html = _html(rng, greeting, paras, quoted, quote_line, cust.name)
        text = "\n\n".join([greeting, *paras, f"Best regards,\n{cust.name}"]) + "\n\n" \
            + quote_line.replace("&lt;", "<").replace("&gt;", ">") + "\n" \
            + "\n".join("> " + p for p in quoted)
        stripped = "\n\n".join([greeting, *paras, f"Best regards,\n{cust.name}"]) if back else ""
        score = round(rng.uniform(-1.0, 3.2), 1)
        date = f"{when.split(' at ')[0]} 2026 {rng.randint(8, 18):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d} +0000"
        date = date.replace(" Nov 2026 2026", " Nov 2026")
        dkim = base64.b64encode(rng.randbytes(180)).decode()
        headers = [
            {"Name": "Return-Path", "Value": f"<{cust.email}>"},
            {"Name": "Received", "Value": f"by p-pm-inboundg02a-aws-euwest1a.inbound.postmarkapp.com (Postfix, from userid 996) id 4F{rng.getrandbits(32):08X}; {date}"},
            {"Name": "Received", "Value": f"from mail-{rng.randint(1, 99)}.{cust.domain} ({cust.domain} [{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}]) by p-pm-inboundg02a-aws-euwest1a.inbound.postmarkapp.com (Postfix) with ESMTPS id 7A{rng.getrandbits(32):08X} for <support@raxx.app>; {date}"},
            {"Name": "X-Spam-Checker-Version", "Value": "SpamAssassin 3.4.6 (2021-04-09) on p-pm-inboundg02a-aws-euwest1a"},
            {"Name": "X-Spam-Status", "Value": f"No, score={score} required=5.0 tests=DKIM_SIGNED,DKIM_VALID,HTML_MESSAGE,SPF_PASS autolearn=ham"},
            {"Name": "X-Spam-Score", "Value": f"{score}"},
            {"Name": "X-Spam-Tests", "Value": "DKIM_SIGNED,DKIM_VALID,DKIM_VALID_AU,HTML_MESSAGE,RCVD_IN_DNSWL_NONE,SPF_HELO_NONE,SPF_PASS"},
            {"Name": "Received-SPF", "Value": f"pass (p-pm-inboundg02a-aws-euwest1a: domain of {cust.email} designates sender IP as permitted sender) receiver=p-pm-inboundg02a-aws-euwest1a; client-ip=203.0.113.{rng.randint(1, 254)}; helo=mail.{cust.domain};"},
            {"Name": "DKIM-Signature", "Value": f"v=1; a=rsa-sha256; c=relaxed/relaxed; d={cust.domain}; s=20230601; t=17{rng.randint(10**7, 10**8 - 1)}; h=to:subject:message-id:date:from:mime-version:from:to:cc:subject:date:message-id:reply-to; bh={base64.b64encode(rng.randbytes(32)).decode()}; b={dkim}"},
            {"Name": "MIME-Version", "Value": "1.0"},
            {"Name": "Message-ID", "Value": "<" + MARK["M"] + msgid_suffix},
        ]
        if parent is not None:
            parent_id = "<" + MARK["R"] + parent["msgid_suffix"]
            headers.append({"Name": "In-Reply-To", "Value": parent_id})
            headers.append({"Name": "References", "Value": parent_id})
        headers.append({"Name": "X-Mailer" if rng.random() < 0.5 else "User-Agent", "Value": rng.choice(CLIENTS)})
        headers.append({"Name": "Content-Type", "Value": f'multipart/alternative; boundary="000000000000{rng.getrandbits(40):010x}"'})
        to = "support@raxx.app"
        payload = {
            "FromName": cust.name, "MessageStream": "inbound", "From": cust.email,
            "FromFull": {"Email": cust.email, "Name": cust.name, "MailboxHash": ""},
            "To": f'"Raxx Support" <{to}>', "ToFull": [{"Email": to, "Name": "Raxx Support", "MailboxHash": ""}],
            "Cc": "", "CcFull": [], "Bcc": "", "BccFull": [], "OriginalRecipient": to, "ReplyTo": "",
            "Subject": subject, "MessageID": MARK["P"], "Date": date, "MailboxHash": "",
            "TextBody": text, "HtmlBody": html, "StrippedTextReply": stripped, "Tag": "",
            "Headers": headers, "Attachments": [],
        }
        raw = json.dumps(payload, ensure_ascii=False)
        templates.append(Template(back, _split(raw)))
        sizes.append(len(raw.encode()))
    return PayloadSet(templates, sum(sizes) / len(sizes), replies)


def _split(raw: str) -> list:
    """Split JSON text around the markers, in order of appearance."""
    parts: list = []
    pos, kind_before = 0, None
    while True:
        hits = [(raw.find(m, pos), k, m) for k, m in MARK.items()]
        hits = [h for h in hits if h[0] >= 0]
        if not hits:
            break
        at, kind, mark = min(hits)
        literal = raw[pos:at]
        parts.append(literal if kind_before is None else (kind_before, literal))
        pos, kind_before = at + len(mark), kind
    tail = raw[pos:]
    parts.append(tail if kind_before is None else (kind_before, tail))
    return parts


class RunIds:
    """The per-run strings spliced into templates (a fresh run gets fresh ids)."""

    def __init__(self) -> None:
        u = uuid.uuid4().hex
        self.pm_prefix = f"{u[:8]}-{u[8:12]}-4{u[13:16]}-8{u[17:20]}-"  # + 12 digits = uuid-shaped
        self.tag = "b" + u[20:28]

    def body(self, template: tuple[int, bytes, list[tuple[str, bytes]]], i: int) -> bytes:
        back, head, rest = template
        out = [head]
        for kind, literal in rest:
            if kind == "P":
                out.append(f"{self.pm_prefix}{i:012d}".encode())
            elif kind == "M":
                out.append(f"{self.tag}-{i}".encode())
            else:
                out.append(f"{self.tag}-{i - back}".encode())
            out.append(literal)
        return b"".join(out)


if __name__ == "__main__":  # quick look: python bench/payloads.py
    ps = build(50)
    ids = RunIds()
    enc = ps.encoded()
    print(f"mean payload {ps.mean_bytes:.0f} bytes, replies {ps.replies}")
    print(json.dumps(json.loads(ids.body(enc[0], 0)), indent=1)[:3000])
