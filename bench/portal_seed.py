"""Create, migrate and bulk-seed the portal benchmark's database (used by bench/portal.py).

The data set (defaults):
  * 15 agents.
  * 1 000 *portal customers*, each with exactly 20 visible tickets (not merged, not quarantined)
    spread over up to two years, newest activity last. Every 4th customer has one long ticket
    (30 customer-visible messages plus 2 internal notes); the other tickets have 3-6 threads
    (customer mail, support replies, an internal note in about a third of them). About 2 % of the
    customers also have an extra ticket that was merged into one of their others (hidden from the
    list, still reachable by id). Each portal customer has one live Echo session
    (`customer_sessions`), so the JWT's `sid` names a real row.
  * 4 000 *other customers* with 1-6 tickets each (a few quarantined spam tickets among them), so
    that tickets/threads/customers are several times bigger than the portal customers' share.
  * Attachment rows on ~15 % of customer messages (screenshots, PDFs, logs; about 2 % erased). The
    bytes are not stored: the list and detail endpoints never read them.
  * 300 000 older `support_audit_log` rows (the table every portal request appends to).

Thread bodies are realistic mail: the new text (`stripped_text`), the text part with a quoted
copy of the previous message (`body_text`), and an HTML part with inline styles and a
blockquote (`body_html`); outbound replies carry the agent's signature.

Rows are generated in Python and streamed with `COPY ... FROM STDIN` (psycopg 3). Foreign-key
triggers are skipped while copying when the role is a superuser (the rows are consistent by
construction), the GIN indexes of the three big tables are dropped before the COPY and recreated
from their recorded definitions afterwards, and the sequence is moved past the seeded numbers.
Then `VACUUM ANALYZE`.
"""

from __future__ import annotations

import hashlib
import random
import secrets
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchdb  # noqa: E402

DAY = 86400.0
SUPPORT_ADDRESS = "support@raxx.app"
TABLES = ("agents", "customers", "customer_sessions", "tickets", "threads", "attachments", "support_audit_log")


def log(msg: str) -> None:
    print(f"[portal-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------
# Database lifecycle
# ----------------------------------------------------------------------------------------------

class Database(benchdb.Database):
    PREFIX = "echo_portal_bench_"


# ----------------------------------------------------------------------------------------------
# Text
# ----------------------------------------------------------------------------------------------

FIRST = ["Amira", "Ben", "Chloe", "Daniel", "Elif", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kavya", "Liam",
         "Maya", "Noah", "Olga", "Pedro", "Quinn", "Rosa", "Sven", "Tara", "Umar", "Vera", "Wei", "Ximena", "Yusuf",
         "Zoe", "Aoife", "Bruno", "Carmen", "Dmitri", "Emma", "Felix", "Giulia", "Hannah", "Ivan", "Julia", "Kenji",
         "Lena", "Mateo", "Nadia", "Oscar", "Priya", "Rafael", "Sofia", "Tomas", "Ursula", "Viktor", "Wanjiru"]
LAST = ["Adeyemi", "Berg", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Hansen", "Ito", "Jansen", "Kowalski",
        "Larsen", "Moreau", "Nakamura", "Okafor", "Petrov", "Quintero", "Rossi", "Schmidt", "Tanaka", "Ulrich",
        "Virtanen", "Walsh", "Xu", "Yilmaz", "Zimmermann", "Novak", "Silva", "Murphy", "Kaur", "Haddad", "Lindqvist"]
DOMAINS = ["gmail.com", "outlook.com", "yahoo.co.uk", "icloud.com", "proton.me", "gmx.de", "hey.com", "fastmail.com",
           "acme-corp.com", "northwind.io", "globex.net", "initech.co", "umbrella.org", "hooli.xyz", "stark.dev"]
CATEGORIES = ["account", "billing", "bug_report", "feature_request", None, None]
TAGS = ["billing", "refund", "bug", "vip", "login", "urgent", "invoice", "mobile", "api", "shipping", "returns"]

SUBJECTS = [
    "Charged twice for my {plan} subscription", "Can't log in after resetting my password",
    "Invoice {inv} shows the wrong VAT number", "Refund for order #{order}", "App crashes when I open settings",
    "How do I export my data?", "Feature request: dark mode for the dashboard", "Card declined but money taken",
    "Upgrade from {plan} to Business", "Two-factor codes never arrive", "Order #{order} hasn't shipped yet",
    "Sync stopped working on my {device}", "Question about the annual plan", "Delete my account please",
    "Wrong currency on checkout", "Webhook deliveries failing with 500", "API rate limit too low for us",
    "Missing items in order #{order}", "Can I change the email on my account?", "Receipts for tax purposes",
    "Notifications are delayed by hours", "Import from CSV fails at row {n}", "Trial ended early?",
    "Cancel my subscription", "The mobile app logs me out every day", "Discount code {code} not accepted",
    "Team member can't accept the invitation", "Password reset link expired immediately",
    "Duplicate charges on {month} statement", "Where is my refund?", "Reports page is blank",
    "Bug: search returns nothing for accented names", "Shipping address can't be updated",
]
OPENERS = ["Hi there,", "Hello,", "Hi support team,", "Good morning,", "Hey,", "Dear Raxx team,", "Hi {agent},"]
CUSTOMER_LINES = [
    "I was charged {amount} on {date} but I only have one subscription on my account.",
    "This started happening right after the last update of the app on my {device}.",
    "I've tried clearing the cache and reinstalling, but the problem is still there.",
    "Could you please look into this as soon as possible? It is blocking our whole team.",
    "The order number is #{order} and it was placed on {date}.",
    "I attached a screenshot of the error message I keep getting.",
    "When I click on the button nothing happens, and the page just keeps loading forever.",
    "My colleague has the same issue on a different laptop, so I don't think it's my machine.",
    "We are on the {plan} plan and this feature was supposed to be included.",
    "Can you confirm whether the refund of {amount} has been processed on your side?",
    "The error says \"something went wrong (code {n})\" and nothing else.",
    "I need the invoice to show our company name and VAT number for our accountants.",
    "It worked fine last week, so something must have changed recently.",
    "I've been waiting for {n} days now and haven't heard anything back.",
    "Is there a way to do this in bulk? We have about {n} records to move.",
    "Thanks for getting back to me so quickly, I really appreciate it.",
    "I tried what you suggested but unfortunately it didn't make any difference.",
    "That fixed it, thank you so much! You can close this ticket.",
    "Just following up on this, is there any news?",
    "Our finance team needs this resolved before the end of the month.",
]
AGENT_LINES = [
    "Thanks for reaching out, and sorry for the trouble with this.",
    "I've checked your account and I can see the two payments of {amount} on {date}.",
    "I've issued a refund of {amount}; it usually takes 3-5 business days to appear on your statement.",
    "Could you tell me which version of the app you're using? You'll find it under Settings > About.",
    "Our engineering team is aware of this issue and a fix is planned for the next release.",
    "I've updated the invoice with your company details; you can download it again from the billing page.",
    "As a workaround, signing out and back in again should restore the sync for now.",
    "I've escalated this to our payments team and will get back to you as soon as I hear from them.",
    "Your order #{order} left our warehouse on {date}; the tracking link is in your account.",
    "I've reset the two-factor settings on your account, so you can set them up again on your next sign-in.",
    "Could you send us a screenshot of the error, and the time it happened, so we can find it in our logs?",
    "The {plan} plan includes up to {n} seats; you can add more from the team settings page.",
    "I'm glad that worked! I'll mark this ticket as resolved, but just reply if anything else comes up.",
    "I've applied the discount to your next invoice, so you don't need to do anything else.",
    "We don't support bulk exports in the app yet, but I've attached a CSV of your data to this reply.",
]
CLOSERS = ["Thanks,", "Best regards,", "Cheers,", "Kind regards,", "Thank you,", "Many thanks,"]
NOTES = [
    "Customer is on the {plan} plan since {date}; double charge confirmed in Stripe, refund issued.",
    "Escalated to payments (PAY-{n}). Waiting on their answer before replying.",
    "Looks like the known sync bug (ENG-{n}). Linked this ticket there.",
    "VIP account, please keep response times short.",
    "Checked the logs: {n} failed sign-ins from the same IP, probably a password manager issue.",
    "Do not offer another discount, already had one in {month}.",
]
PLANS = ["Starter", "Pro", "Business", "Team", "Enterprise"]
DEVICES = ["iPhone", "Android phone", "iPad", "MacBook", "Windows laptop", "Chromebook"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
FILES = [("screenshot.png", "image/png", 40_000, 900_000), ("Screenshot 2024-03-02 at 10.41.12.png", "image/png",
         80_000, 1_500_000), ("invoice.pdf", "application/pdf", 30_000, 250_000), ("receipt.pdf", "application/pdf",
         20_000, 120_000), ("error-log.txt", "text/plain", 1_000, 60_000), ("export.csv", "text/csv", 2_000, 400_000),
         ("IMG_4821.jpg", "image/jpeg", 300_000, 4_000_000), ("screen-recording.mp4", "video/mp4", 2_000_000,
         20_000_000)]


class Text:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def fill(self, template: str, agent: str = "there") -> str:
        r = self.rng
        if "{" not in template:
            return template
        return template.format(
            plan=r.choice(PLANS), inv=f"INV-{r.randint(10000, 99999)}", order=r.randint(100000, 999999),
            device=r.choice(DEVICES), n=r.randint(2, 400), code=f"SPRING{r.randint(10, 50)}",
            month=r.choice(MONTHS), amount=f"€{r.randint(5, 400)}.{r.randint(0, 99):02d}",
            date=f"{r.randint(1, 28)} {r.choice(MONTHS)}", agent=agent,
        )

    def subject(self) -> str:
        return self.fill(self.rng.choice(SUBJECTS))

    def customer_message(self, name: str, agent: str, lines: int) -> str:
        r = self.rng
        body = " ".join(self.fill(s) for s in r.sample(CUSTOMER_LINES, lines))
        if lines > 3:  # longer mails come in two paragraphs
            cut = body.find(". ", len(body) // 2)
            if cut > 0:
                body = body[:cut + 1] + "\n\n" + body[cut + 2:]
        return f"{self.fill(r.choice(OPENERS), agent)}\n\n{body}\n\n{r.choice(CLOSERS)}\n{name}"

    def agent_message(self, customer_first: str, agent: str, lines: int) -> str:
        r = self.rng
        body = " ".join(self.fill(s) for s in r.sample(AGENT_LINES, lines))
        return (f"Hi {customer_first},\n\n{body}\n\n{r.choice(CLOSERS)}\n{agent}\nRaxx Support\n"
                "https://raxx.app/help")

    def note(self) -> str:
        return self.fill(self.rng.choice(NOTES))


def quoted(prev_text: str, when: datetime, who: str) -> str:
    lines = prev_text[:6000].splitlines()
    return f"On {when:%a, %d %b %Y at %H:%M}, {who} wrote:\n" + "\n".join("> " + ln for ln in lines)


def html_of(text: str, quote: str | None) -> str:
    paras = "".join(f'<p style="margin:0 0 12px 0;font-family:Arial,sans-serif;font-size:14px">'
                    f'{p.replace(chr(10), "<br>")}</p>' for p in text.split("\n\n"))
    html = f'<html><head><meta charset="utf-8"></head><body><div dir="ltr">{paras}</div>'
    if quote:
        q = quote.replace("&", "&amp;").replace("<", "&lt;").replace("\n", "<br>\n")
        html += ('<div class="gmail_quote"><blockquote class="gmail_quote" style="margin:0 0 0 .8ex;'
                 f'border-left:1px #ccc solid;padding-left:1ex">{q}</blockquote></div>')
    return html + "</body></html>"


# ----------------------------------------------------------------------------------------------
# The data set
# ----------------------------------------------------------------------------------------------

@dataclass
class Plan:
    portal_customers: int = 1000
    tickets_per_customer: int = 20
    heavy_every: int = 4          # every Nth portal customer has one long ticket
    heavy_threads: int = 30       # customer-visible messages on a long ticket
    other_customers: int = 4000
    audit_rows: int = 300_000
    agents: int = 15
    seed: int = 20240601


@dataclass
class PortalCustomer:
    id: uuid.UUID
    email: str
    session_id: str                 # the JWT's `sid` (the row's id is its sha256)
    tickets: list[uuid.UUID] = field(default_factory=list)    # visible, newest activity first
    merged: list[uuid.UUID] = field(default_factory=list)     # merged away (hidden from the list)
    heavy: uuid.UUID | None = None


@dataclass
class Seeded:
    customers: list[PortalCustomer]
    counts: dict
    seconds: float
    now: datetime


TICKET_COLS = ("id", "seq", "customer_id", "assigned_to", "status", "subject", "tags", "category", "source",
               "quarantined", "quarantine_reason", "merged_into_id", "created_at", "updated_at", "closed_at",
               "last_customer_reply_at", "status_changed_at", "last_agent_reply_at", "customer_read_at")
THREAD_COLS = ("id", "ticket_id", "direction", "source", "customer_id", "sender_email", "sender_name",
               "authored_by", "subject", "body_html", "body_text", "stripped_text", "rfc_message_id",
               "postmark_message_id", "in_reply_to", '"references"', "is_auto_reply", "spam_score", "quarantined",
               "created_at")
ATTACHMENT_COLS = ("id", "thread_id", "filename", "content_type", "size_bytes", "s3_key", "sha256", "created_at",
                   "erased_at")


class Generator:
    def __init__(self, plan: Plan, now: datetime) -> None:
        self.plan = plan
        self.now = now
        self.rng = random.Random(plan.seed)
        self.text = Text(self.rng)
        self.agents = [(uuid.UUID(int=self.rng.getrandbits(128), version=4), f"{self.rng.choice(FIRST)} "
                        f"{self.rng.choice(LAST)}") for _ in range(plan.agents)]
        self.tickets: list[tuple] = []   # rows without seq; seq assigned in creation order
        self.attachments = 0

    def uid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    # One ticket and its threads ----------------------------------------------------------------
    def ticket(self, customer_id, email, name, start: datetime, visible: int, *, merged_into=None,
               quarantined=False, source=None) -> tuple[tuple, list[tuple], list[tuple]]:
        r, now = self.rng, self.now
        tid = self.uid()
        subject = self.text.subject()
        first = name.split()[0]
        agent_id, agent_name = r.choice(self.agents)
        source = source or ("portal" if r.random() < 0.2 else "email")
        want_note = r.random() < 0.35 or visible >= 10
        notes = (2 if visible >= 10 else 1) if want_note else 0
        kinds = ["inbound" if i % 2 == 0 else "outbound" for i in range(visible)]
        if visible >= 4 and r.random() < 0.3:
            kinds[-1] = "inbound"   # a customer follow-up before the last reply
        for _ in range(notes):
            kinds.insert(r.randint(1, len(kinds)), "internal")
        # Timestamps: agent replies within minutes to a day, customers within an hour to three days.
        times, t = [], start
        for kind in kinds:
            times.append(t)
            t += timedelta(seconds=r.uniform(600, DAY) if kind != "outbound" else r.uniform(1800, 3 * DAY))
        if times[-1] > now - timedelta(minutes=5):   # squeeze into the past
            span = (times[-1] - times[0]).total_seconds() or 1.0
            room = max(60.0, (now - timedelta(minutes=5) - times[0]).total_seconds())
            times = [times[0] + timedelta(seconds=(x - times[0]).total_seconds() * room / span) for x in times]
        threads, atts = [], []
        prev_text, prev_when, prev_who, prev_mid, refs = None, None, None, None, []
        last_in = last_out = None
        for kind, when in zip(kinds, times, strict=True):
            thid = self.uid()
            if kind == "internal":
                note = self.text.note()
                threads.append((thid, tid, "internal", "console", None, None, agent_name, agent_id, None,
                                "", note, note, None, None, None, None, False, None, quarantined, when))
                continue
            if kind == "inbound":
                new = self.text.customer_message(name, agent_name.split()[0], r.randint(2, 6))
                src = "portal" if source == "portal" and prev_text is None else "email"
                mid = f"<{uuid.UUID(int=r.getrandbits(128)).hex[:20]}@mail.{email.rpartition('@')[2]}>"
                who = name
                row_sender = (customer_id, email, name, None)
                pm_id = str(self.uid()) if src == "email" else None
                spam = round(r.uniform(0, 2.5), 2) if src == "email" else None
                last_in = when
            else:
                new = self.text.agent_message(first, agent_name, r.randint(2, 4))
                src = "console"
                mid = f"<{tid.hex[:12]}.{thid.hex[:12]}@raxx.app>"
                who = f"Raxx Support <{SUPPORT_ADDRESS}>"
                row_sender = (None, SUPPORT_ADDRESS, agent_name, agent_id)
                pm_id, spam = None, None
                last_out = when
            quote = quoted(prev_text, prev_when, prev_who) if prev_text else None
            body_text = new + ("\n\n" + quote if quote else "")
            threads.append((thid, tid, kind, src, *row_sender[:3], row_sender[3],
                            ("Re: " + subject) if prev_text else subject, html_of(new, quote), body_text, new, mid,
                            pm_id, prev_mid, " ".join(refs[-8:]) or None, False, spam, quarantined, when))
            refs.append(mid)
            prev_text, prev_when, prev_who, prev_mid = body_text, when, who, mid
            # Attachments: screenshots and PDFs mostly on customer mail.
            chance = 0.15 if kind == "inbound" else 0.05
            while r.random() < chance and len(atts) < 40:
                fname, ctype, lo, hi = r.choice(FILES)
                atts.append((self.uid(), thid, fname, ctype, r.randint(lo, hi), "att/" + secrets.token_urlsafe(24),
                             hashlib.sha256(thid.bytes + bytes([len(atts)])).hexdigest(), when,
                             when + timedelta(days=30) if r.random() < 0.02 else None))
                chance = 0.2
        last = times[-1]
        age = (now - last).total_seconds() / DAY
        if merged_into is not None:
            status = "closed"
        elif age > 14:
            status = "closed" if r.random() < 0.8 else "resolved"
        elif kinds[-1] == "inbound" or last_out is None:
            status = "open"
        else:
            status = "pending" if r.random() < 0.6 else "resolved"
        closed_at = None
        if status in ("resolved", "closed"):
            closed_at = min(now - timedelta(minutes=1), last + timedelta(seconds=r.uniform(600, 5 * DAY)))
        updated_at = max(last, closed_at or last)
        read_at = None
        if last_out is not None:
            roll = r.random()
            if roll < 0.7:
                read_at = min(now - timedelta(seconds=30), last_out + timedelta(seconds=r.uniform(60, 2 * DAY)))
            elif roll < 0.85:
                read_at = last_out - timedelta(seconds=r.uniform(60, DAY))   # seen an older reply only
            # else never read in the portal (email-only customer): unread
        row = (tid, customer_id, agent_id if r.random() < 0.85 else None, status, subject,
               r.sample(TAGS, r.choice((0, 0, 1, 1, 2))), r.choice(CATEGORIES), source, quarantined,
               "spam_score" if quarantined else None, merged_into, times[0], updated_at, closed_at, last_in,
               closed_at or (last_out or last), last_out, read_at)
        return row, threads, atts


def _customer_times(rng: random.Random, now: datetime, count: int) -> list[datetime]:
    """Ticket start times over a customer's life: up to two years back, denser recently."""
    life = rng.uniform(30, 730)
    ages = sorted((rng.random() ** 1.6) * life for _ in range(count))
    if rng.random() < 0.6:   # most active customers wrote in the last two weeks
        ages[0] = rng.uniform(0.02, 14)
    return sorted(now - timedelta(days=a) for a in ages)


def seed(db: Database, plan: Plan) -> Seeded:
    import psycopg

    t0 = time.monotonic()
    now = datetime.now(UTC)
    gen = Generator(plan, now)
    rng = gen.rng
    with psycopg.connect(db.dsn) as conn:
        superuser = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]
        if superuser:
            conn.execute("SET session_replication_role = replica")
        conn.execute("SET synchronous_commit = off")
        gin = conn.execute(
            """SELECT ic.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i
                 JOIN pg_class c ON c.oid = i.indrelid JOIN pg_class ic ON ic.oid = i.indexrelid
                 JOIN pg_am am ON am.oid = ic.relam
                WHERE c.relname IN ('customers', 'tickets', 'threads') AND am.amname = 'gin'""").fetchall()
        for name, _ in gin:
            conn.execute(f'DROP INDEX "{name}"')

        with conn.cursor().copy("COPY agents (id, email, display_name, role, active, created_at) FROM STDIN") as cp:
            for i, (aid, name) in enumerate(gen.agents):
                cp.write_row((aid, f"{name.split()[0].lower()}.{i}@raxx.app", name, "superadmin" if i == 0 else "ops",
                              True, now - timedelta(days=800)))

        customers: list[PortalCustomer] = []
        customer_rows, session_rows = [], []
        ticket_plans = []   # (start, customer id, email, name, visible threads, extra kwargs, portal customer idx)
        used_emails = set()

        def new_email(name: str) -> str:
            while True:
                first, last = name.lower().split()
                email = f"{first}.{last}{rng.randint(1, 9999)}@{rng.choice(DOMAINS)}"
                if email not in used_emails:
                    used_emails.add(email)
                    return email

        for i in range(plan.portal_customers + plan.other_customers):
            name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
            cid, email = gen.uid(), new_email(name)
            portal = i < plan.portal_customers
            count = plan.tickets_per_customer if portal else rng.choice((1, 1, 2, 2, 3, 4, 5, 6))
            starts = _customer_times(rng, now, count)
            customer_rows.append((cid, email, name, starts[0] - timedelta(days=1),
                                  now - timedelta(hours=rng.uniform(0, 48)), rng.random() < 0.01))
            if portal:
                pc = PortalCustomer(cid, email, secrets.token_urlsafe(24))
                customers.append(pc)
                session_rows.append((hashlib.sha256(pc.session_id.encode()).hexdigest(), cid, now - timedelta(hours=1),
                                     now + timedelta(hours=11)))
                heavy_at = rng.randrange(count) if i % plan.heavy_every == 0 else -1
                for k, start in enumerate(starts):
                    visible = plan.heavy_threads if k == heavy_at else rng.choice((2, 2, 3, 3, 3, 4, 4, 5))
                    ticket_plans.append((start, cid, email, name, visible, {}, len(customers) - 1, k == heavy_at))
                if rng.random() < 0.02:   # an extra ticket, merged into one of the others
                    ticket_plans.append((starts[-1] + timedelta(minutes=20), cid, email, name, 1,
                                         {"merge": True}, len(customers) - 1, False))
            else:
                spam = rng.random() < 0.03
                for start in starts:
                    ticket_plans.append((start, cid, email, name, 1 if spam else rng.choice((1, 2, 2, 3, 3, 4)),
                                         {"quarantined": spam}, None, False))
        ticket_plans.sort(key=lambda p: p[0])

        with conn.cursor().copy("COPY customers (id, email, display_name, first_seen_at, last_seen_at, email_bounced)"
                                " FROM STDIN") as cp:
            for row in customer_rows:
                cp.write_row(row)
        with conn.cursor().copy("COPY customer_sessions (id, customer_id, created_at, expires_at) FROM STDIN") as cp:
            for row in session_rows:
                cp.write_row(row)
        log(f"customers: {len(customer_rows)} ({plan.portal_customers} portal customers with sessions)")

        # Tickets are numbered in creation order; merged-away ones point at a sibling made earlier.
        counts = {"tickets": 0, "threads": 0, "attachments": 0}
        last_visible: dict[uuid.UUID, uuid.UUID] = {}
        activity: dict[int, list[tuple[datetime, uuid.UUID]]] = {}
        pending_atts: list[tuple] = []
        chunk_t: list[tuple] = []
        chunk_th: list[tuple] = []

        def flush() -> None:
            # One COPY at a time per connection: each chunk's tickets, then their threads.
            with conn.cursor().copy(f"COPY tickets ({', '.join(TICKET_COLS)}) FROM STDIN") as cp:
                for r in chunk_t:
                    cp.write_row(r)
            with conn.cursor().copy(f"COPY threads ({', '.join(THREAD_COLS)}) FROM STDIN") as cp:
                for r in chunk_th:
                    cp.write_row(r)
            chunk_t.clear()
            chunk_th.clear()

        for seq, (start, cid, email, name, visible, extra, pidx, heavy) in enumerate(ticket_plans, start=1):
            merge_into = last_visible.get(cid) if extra.get("merge") else None
            row, threads, atts = gen.ticket(cid, email, name, start, visible, merged_into=merge_into,
                                            quarantined=extra.get("quarantined", False))
            chunk_t.append((row[0], seq, *row[1:]))
            chunk_th.extend(threads)
            pending_atts.extend(atts)
            counts["tickets"] += 1
            counts["threads"] += len(threads)
            if merge_into is None:
                last_visible[cid] = row[0]
            if pidx is not None:
                pc = customers[pidx]
                if merge_into is not None:
                    pc.merged.append(row[0])
                else:
                    activity.setdefault(pidx, []).append((row[12], row[0]))   # (updated_at, id)
                    if heavy:
                        pc.heavy = row[0]
            if len(chunk_t) >= 2000:
                flush()
            if seq % 10000 == 0:
                log(f"  {seq}/{len(ticket_plans)} tickets copied")
        flush()
        with conn.cursor().copy(f"COPY attachments ({', '.join(ATTACHMENT_COLS)}) FROM STDIN") as cp:
            for a in pending_atts:
                cp.write_row(a)
        counts["attachments"] = len(pending_atts)
        conn.execute("SELECT setval('ticket_number_seq', %s)", (len(ticket_plans),))
        for pidx, rows in activity.items():
            customers[pidx].tickets = [tid for _, tid in sorted(rows, key=lambda x: x[0], reverse=True)]
        log(f"tickets: {counts['tickets']}, threads: {counts['threads']}, attachments: {counts['attachments']} "
            f"({time.monotonic() - t0:.1f} s)")

        # Earlier portal traffic: the audit table every request appends to.
        portal_ids = [c.id for c in customers]
        actions = ["ticket.list"] * 6 + ["ticket.read"] * 3 + ["ticket.reply", "ticket.create", "attachment.read"]
        with conn.cursor().copy("COPY support_audit_log (customer_id, action, resource_id, ip_prefix, session_id_hash,"
                                " success, error_code, created_at) FROM STDIN") as cp:
            for k in range(plan.audit_rows):
                cid = rng.choice(portal_ids)
                ok = rng.random() > 0.01
                cp.write_row((cid, rng.choice(actions), None, f"203.0.{rng.randint(0, 255)}.0/24",
                              hashlib.sha256(str(k % 5000).encode()).hexdigest(), ok, None if ok else "not_found",
                              now - timedelta(seconds=rng.uniform(0, 90 * DAY))))
        counts["support_audit_log"] = plan.audit_rows
        conn.commit()
        log(f"rows copied ({time.monotonic() - t0:.1f} s); rebuilding {len(gin)} GIN indexes")
        conn.execute("SET maintenance_work_mem = '256MB'")
        for _, ddl in gin:
            conn.execute(ddl)
        conn.commit()
        if superuser:
            conn.execute("SET session_replication_role = origin")
        bad = conn.execute("""SELECT (SELECT count(*) FROM threads t LEFT JOIN tickets k ON k.id = t.ticket_id
                                       WHERE k.id IS NULL)
                                   + (SELECT count(*) FROM tickets k LEFT JOIN customers c ON c.id = k.customer_id
                                       WHERE k.customer_id IS NOT NULL AND c.id IS NULL)""").fetchone()[0]
        if bad:
            raise RuntimeError(f"seeded rows are inconsistent ({bad} dangling references)")
        conn.commit()
    with psycopg.connect(db.dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        counts.update({t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES})
        counts["db_size_mb"] = round(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0] / 2**20)
    seconds = time.monotonic() - t0
    log(f"seeded and analysed in {seconds:.1f} s: {counts}")
    return Seeded(customers, counts, seconds, now)
