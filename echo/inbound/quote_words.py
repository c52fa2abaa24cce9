"""The words mail clients write around quoted history, in the languages Echo's customers write.

Each table holds what clients put in front of an earlier message (an attribution such as
"On … wrote:", a "-----Original Message-----" line, a From:/Sent:/To:/Subject: block), in front
of a forwarded one, and under a reply sent from a phone. It covers the languages of
mail-parser-reply (en, de, fr, es, it, nl, sv, da, pl, cs, ja, ko, zh) and talon, plus Portuguese,
Norwegian, Finnish, Russian, Ukrainian, Turkish, Hungarian, Romanian, Greek and Vietnamese.
Phrases are matched case-insensitively as whole lines or line starts, never as free text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache


def union(words: Iterable[str]) -> str:
    """One regex alternation of literal phrases, longest first, spaces matching any run of blanks."""
    ordered = sorted(set(words), key=len, reverse=True)
    return "|".join(re.escape(word).replace(r"\ ", r"[ \t\xa0]+") for word in ordered)


# Words that end (or, in German and Dutch, sit inside) an attribution line: "On <date>, <name> wrote:".
WROTE = [
    "wrote", "writes", "sent", "schrieb", "schreef", "het volgende geschreven", "verzond", "a écrit", "écrit",
    "escribió", "escreveu", "ha scritto", "scrisse", "skrev", "kirjoitti", "napisał", "napisała", "napisał(a)",
    "napsal", "napsala", "napsal(a)", "написал", "написала", "написал(а)", "пишет", "написав",
    "пише", "yazdı", "írta", "a scris", "έγραψε", "đã viết", "写道", "寫道", "님이 작성", "작성:",
    "nadesłał", "skrev følgende", "kirjoitti seuraavaa",
]
# Words that open an attribution line in languages that put the date first.
INTRO = [
    "On", "Am", "Le", "El", "Il", "Il giorno", "Op", "Em", "Às", "W dniu", "Dnia", "Den", "På", "Dne", "Vào",
    "Pe", "Ar", "Στις", "В", "У", "Fecha",
]
# "-----Original Message-----" and its translations (the dashes are matched separately).
ORIGINAL_MESSAGE = [
    "Original Message", "Original message", "Reply Message", "Ursprüngliche Nachricht", "Originalnachricht",
    "Antwort Nachricht", "Message d'origine", "Message original", "Mensaje original", "Mensagem original",
    "Mensagem Original", "Messaggio originale", "Messaggio Originale", "Oorspronkelijk bericht",
    "Origineel bericht", "Ursprungligt meddelande", "Originalmeddelande", "Opprinnelig melding",
    "Oprindelig meddelelse", "Oprindelig besked", "Alkuperäinen viesti", "Oryginalna wiadomość",
    "Wiadomość oryginalna", "Původní zpráva", "Pôvodná správa", "Исходное сообщение", "Оригинальное сообщение",
    "Вихідне повідомлення", "Оригінальне повідомлення", "Початкове повідомлення", "Orijinal mesaj",
    "Özgün ileti", "Eredeti üzenet", "Mesaj original", "Mesajul original", "Αρχικό μήνυμα", "Izvorna poruka",
    "Originalna poruka", "原始邮件", "原始郵件", "元のメッセージ", "원본 메시지", "Thư gốc",
]
# Lines that open a forwarded message: what follows is the customer's point, never history.
FORWARDED = [
    "Forwarded message", "Forwarded Message", "Begin forwarded message", "Weitergeleitete Nachricht",
    "Anfang der weitergeleiteten Nachricht", "Message transféré", "Début du message réexpédié",
    "Début du message transféré", "Mensaje reenviado", "Inicio del mensaje reenviado", "Mensagem encaminhada",
    "Início da mensagem reencaminhada", "Messaggio inoltrato", "Inizio messaggio inoltrato",
    "Doorgestuurd bericht", "Begin doorgestuurd bericht", "Vidarebefordrat meddelande",
    "Vidarebefordrat brev", "Videresendt melding", "Videresendt meddelelse", "Videresendt besked",
    "Välitetty viesti", "Przekazana wiadomość", "Wiadomość przekazana", "Přeposlaná zpráva",
    "Пересылаемое сообщение", "Пересланное сообщение", "Начало переадресованного сообщения",
    "Переслане повідомлення", "İletilen mesaj", "Továbbított üzenet", "Mesaj redirecționat",
    "Προωθημένο μήνυμα", "转发的邮件", "轉寄的郵件", "転送されたメッセージ", "전달된 메시지", "Thư đã chuyển tiếp",
]
# Subject prefixes of a forward, which tell an Outlook forward from an Outlook reply.
FORWARD_SUBJECT = ["Fwd", "Fw", "WG", "TR", "RV", "ENC", "I", "VS", "Vs", "Doorst", "PD", "Пересл", "İLT", "Továbbítás"]

# Header fields of a quoted message, by role. "From" and "Date/Sent" are what make a block a header.
FROM_FIELDS = [
    "From", "Von", "De", "Da", "Van", "Från", "Fra", "Od", "От", "Від", "Lähettäjä", "Feladó", "Kimden", "Gönderen",
    "Expeditor", "Από", "Người gửi", "发件人", "寄件者", "差出人", "보낸 사람", "보낸사람", "Remitente", "Absender",
]
DATE_FIELDS = [
    "Sent", "Date", "Gesendet", "Enviado el", "Enviado em", "Envoyé le", "Datum", "Envoyé", "Enviado", "Enviada",
    "Fecha", "Data", "Inviato", "Verzonden",
    "Verstuurd", "Skickat", "Sendt", "Dato", "Wysłano", "Wysłane", "Odesláno", "Отправлено", "Дата", "Надіслано",
    "Lähetetty", "Päivämäärä", "Elküldve", "Dátum", "Gönderildi", "Tarih", "Trimis", "Στάλθηκε", "Ημερομηνία",
    "Đã gửi", "Ngày", "发送时间", "日期", "寄件日期", "送信日時", "日付", "보낸 날짜", "날짜",
]
TO_FIELDS = [
    "To", "An", "À", "A", "Para", "Aan", "Till", "Til", "Do", "Кому", "Komu", "Vastaanottaja", "Címzett", "Kime",
    "Alıcı", "Către", "Προς", "Đến", "收件人", "宛先", "받는 사람", "받는사람", "Cc", "CC", "Kopie", "Kopia", "Копия",
    "Копія", "Kopio", "Másolat", "Bilgi", "Κοιν", "抄送", "副本", "참조", "Bcc", "Reply-To", "Antwort an",
]
SUBJECT_FIELDS = [
    "Subject", "Betreff", "Objet", "Asunto", "Assunto", "Oggetto", "Onderwerp", "Ämne", "Emne", "Temat", "Тема",
    "Aihe", "Předmět", "Tárgy", "Konu", "Subiect", "Θέμα", "Chủ đề", "主题", "主旨", "件名", "제목",
]

# The first words of a phone's or app's signature line. After "my" any device may follow ("Sent from
# my mobile device"); after a bare "Sent from" only a name does ("Sent from Outlook", not "Sent from the
# warehouse on Monday").
SENT_FROM_MY = [
    "Sent from my", "Sent on my", "Von meinem", "Gesendet von meinem", "Gesendet vom", "Envoyé de mon",
    "Envoyé depuis mon", "Enviado desde mi", "Enviado do meu", "Enviado de meu", "Enviado desde o meu",
    "Inviato dal mio", "Verzonden vanaf mijn", "Verstuurd vanaf mijn", "Verzonden met mijn", "Skickat från min",
    "Sendt fra min", "Sendt fra mit", "Wysłane z mojego", "Odesláno z mého", "Отправлено с моего",
    "Надіслано з мого", "Trimis de pe", "发自我的", "從我的", "从我的",
]
SENT_VIA = [
    "Sent from", "Sent via", "Sent with", "Sent using", "Get Outlook for", "Gesendet von", "Gesendet mit",
    "Envoyé de", "Envoyé depuis", "Envoyé avec", "Envoyé à partir de", "Enviado desde", "Enviado do", "Enviado com",
    "Inviato da", "Verzonden met", "Verstuurd met", "Skickat från", "Sendt fra", "Lähetetty", "Wysłane z",
    "Wysłano z", "Odesláno z", "Отправлено с", "Отправлено из", "Отправлено через", "Надіслано з", "Küldve",
    "Στάλθηκε από", "Được gửi từ",
]
# Phone signatures that end with the verb ("Von meinem iPhone gesendet", "iPhoneから送信").
SENT_FROM_SUFFIX = ["gesendet", "gönderildi", "から送信", "发送", "發送", "에서 보냄", "에서 보냄."]

# How customers sign off; a quote followed only by one of these is history wrapped by a goodbye.
VALEDICTIONS = [
    "regards", "best regards", "kind regards", "warm regards", "best", "best wishes", "all the best", "thanks",
    "thank you", "many thanks", "thx", "cheers", "sincerely", "yours", "br", "take care", "mvh", "mfg",
    "gruß", "grüße", "gruss", "grüsse", "viele grüße", "liebe grüße", "beste grüße", "mit freundlichen grüßen",
    "danke", "cordialement", "bien à vous", "merci", "salutations", "saludos", "un saludo", "atentamente",
    "gracias", "cumprimentos", "obrigado", "obrigada", "atenciosamente", "abraços", "cordiali saluti", "saluti",
    "grazie", "groeten", "met vriendelijke groet", "hartelijke groet", "bedankt", "hälsningar",
    "med vänlig hälsning", "vänliga hälsningar", "tack", "hilsen", "med venlig hilsen", "venlig hilsen",
    "vennlig hilsen", "takk", "tak", "terveisin", "ystävällisin terveisin", "kiitos", "pozdrawiam",
    "z poważaniem", "dziękuję", "s pozdravem", "děkuji", "с уважением", "спасибо", "всего доброго", "з повагою",
    "дякую", "saygılarımla", "teşekkürler", "üdvözlettel", "köszönöm", "cu stimă", "mulțumesc", "με εκτίμηση",
    "ευχαριστώ", "trân trọng", "此致", "谢谢", "謝謝", "よろしくお願いします", "감사합니다",
]
# How legal footers open; a quote followed only by one is history too.
DISCLAIMERS = [
    "disclaimer", "confidential", "confidentiality", "this e-mail", "this email", "this message",
    "the information contained", "caution:", "warning:", "notice:", "privileged", "hinweis:", "achtung:",
    "diese e-mail", "diese nachricht", "ce message", "ce courriel", "este mensaje", "este correo",
    "questo messaggio", "deze e-mail", "dit bericht", "detta meddelande", "denne e-mail", "denne meldingen",
    "ta wiadomość", "это сообщение", "этот e-mail",
]


# --- what one line says -----------------------------------------------------------------------------
# Every test below looks at one line (or a few joined), is anchored, and has no nested repetition.

_BLANKS = r"[ \t\xa0]"
_INTRO = re.compile(r"(?:" + union(INTRO) + r")" + _BLANKS, re.IGNORECASE)
_WROTE_ENDINGS = tuple(sorted({word.lower() for word in WROTE}, key=len, reverse=True))
_WROTE_INSIDE = re.compile(r"\b(?:schrieb|schreef|het volgende geschreven|skrev)\b.*:$", re.IGNORECASE)
_EMAIL = re.compile(r"[^\s<>@]@[^\s<>@]")
_DIGIT = re.compile(r"\d")
_ORIGINAL = re.compile(r"[-_=*]{2,}[ \t]*(?:" + union(ORIGINAL_MESSAGE) + r")[ \t]*[-_=*]{2,}$", re.IGNORECASE)
_FORWARD = re.compile(r"[*-]*[ \t]*(?:" + union(FORWARDED) + r")[ \t]*:?[ \t]*-*$", re.IGNORECASE)
_FIELD = re.compile(
    r"\*{0,2}(?:(?P<from>" + union(FROM_FIELDS) + r")|(?P<date>" + union(DATE_FIELDS) + r")|(?P<to>"
    + union(TO_FIELDS) + r")|(?P<subject>" + union(SUBJECT_FIELDS) + r"))\*{0,2}[ \t]*[:：]",
    re.IGNORECASE,
)
_FORWARD_SUBJECT = re.compile(r"[ \t*:]*(?:" + union(FORWARD_SUBJECT) + r")[ \t]*:", re.IGNORECASE)
_RULE = re.compile(r"[-_=*~—–·]{5,}")
_SENT_FROM_MY = re.compile(r"(?:" + union(SENT_FROM_MY) + r")" + _BLANKS + r"[^,;:!?]{1,60}$", re.IGNORECASE)
# A bare "Sent from" needs a name after it: a capital (iPhone's and eM Client's small first letters too) or a digit.
_SENT_VIA = re.compile(r"(?:" + union(SENT_VIA) + r")" + _BLANKS + r"+(?:[A-Z0-9À-Þ]|[ie][A-Z])[^,;:!?]{0,60}$")
_SENT_SUFFIX = re.compile(r"[^,;:!?]{1,60}(?:" + union(SENT_FROM_SUFFIX) + r")\.?$", re.IGNORECASE)
_SIGN_OFF = re.compile(r"(?:-|--[ \t]?)[A-ZÀ-Þ][\w.'’-]*(?:[ \t]+[A-ZÀ-Þ][\w.'’-]*){0,2}")
_VALEDICTION = re.compile(r"(?:" + union(VALEDICTIONS) + r")(?:[\s,.!]|$)", re.IGNORECASE)
_DISCLAIMER = re.compile(r"[\s*]*(?:" + union(DISCLAIMERS) + r")", re.IGNORECASE)
_INLINE_ON = re.compile(r"(?<=[\w.!?])(?:-*[ \t]+|-+)(?=On[ \t])")


_INTRO_FIRST_WORDS = {word.split()[0].lower() for word in INTRO}
_SENT_FIRST_LETTERS = {phrase[0].lower() for phrase in SENT_FROM_MY + SENT_VIA}
_SENT_ENDINGS = tuple(ending.lower() for ending in SENT_FROM_SUFFIX)


def opens_with_intro(text: str) -> bool:
    """Whether the line opens like a dated attribution: "On", "Am", "Le", "W dniu", …"""
    return text.split(None, 1)[0].lower() in _INTRO_FIRST_WORDS and _INTRO.match(text) is not None


def wrote_at_end(text: str) -> bool:
    """Whether the line ends with a "wrote" word (and a colon, or dashes: "---- Bob wrote ----")."""
    tail = text[-64:].rstrip(" \t*:：-").lower()
    if not tail.endswith(_WROTE_ENDINGS):
        return False
    word = next(word for word in _WROTE_ENDINGS if tail.endswith(word))
    before = tail[-len(word) - 1:-len(word)]
    return not before or not before.isalnum() or not word[0].isascii()


def attribution_kind(text: str, intro: bool) -> str:
    """"s" for a sure attribution, "w" for one that counts only above a quote, "" for none."""
    dated = _DIGIT.search(text) is not None
    addressed = _EMAIL.search(text) is not None
    if wrote_at_end(text):
        return "s" if (intro and dated) or addressed else "w"
    if intro and dated and _WROTE_INSIDE.search(text):
        return "s"
    if dated and addressed and text.endswith((":", "：", ">")):
        return "w"
    return ""


def split_inline_attribution(text: str) -> tuple[str, str] | None:
    """`reply On Wed, Apr 4, 2012, Bob wrote:` is two lines: the reply, then the attribution."""
    if wrote_at_end(text):
        for intro in _INLINE_ON.finditer(text):
            rest = text[intro.end():]
            if _DIGIT.search(rest):
                return text[:intro.start()].rstrip(" -"), rest
    return None


@lru_cache(maxsize=4096)
def field(text: str) -> tuple[str, int]:
    """The header field a line opens with ("from", "date", "to", "subject") and where its value starts."""
    if ":" not in text[:48] and "：" not in text[:48]:
        return "", 0
    found = _FIELD.match(text)
    return (found.lastgroup or "", found.end()) if found else ("", 0)


def has_address(text: str) -> bool:
    return _EMAIL.search(text) is not None


def has_digit(text: str) -> bool:
    return _DIGIT.search(text) is not None


def is_forward(text: str) -> bool:
    return len(text) <= 100 and _FORWARD.match(text) is not None


def is_original_message(text: str) -> bool:
    return text[:1] in "-_=*" and _ORIGINAL.match(text) is not None


def is_forward_subject(value: str) -> bool:
    return _FORWARD_SUBJECT.match(value) is not None


def is_rule(text: str) -> bool:
    return text[:1] in "-_=*~—–·" and _RULE.fullmatch(text) is not None


def is_phone_signature(text: str) -> bool:
    if len(text) > 100:
        return False
    if text[0].lower() in _SENT_FIRST_LETTERS and (_SENT_FROM_MY.match(text) or _SENT_VIA.match(text)):
        return True
    return text.rstrip(".").lower().endswith(_SENT_ENDINGS) and _SENT_SUFFIX.fullmatch(text) is not None


def is_sign_off(text: str) -> bool:
    """A name signed with a dash: "-Abhishek Kona", "-- Tim"."""
    return len(text) <= 60 and _SIGN_OFF.fullmatch(text) is not None


def is_valediction(text: str) -> bool:
    return _VALEDICTION.match(text) is not None


def is_disclaimer(text: str) -> bool:
    return _DISCLAIMER.match(text) is not None
