"""Where quoted history begins, per language and client: reply headers, separators, header blocks.

A local table: no maintained library covers these languages with linear-time matching (mail-parser-reply's
multi-line regexes are quadratic, quotequail knows a few languages and only a first split, talon needs a
trained classifier). Every pattern is RE2, linear in what it reads, and reads one line or one reply-header
candidate (up to three joined lines, at most MAX_HEADER_CHARS long); header-block fields are a dictionary
look-up.
"""

# ruff: noqa: RUF001, RUF003  (a table of words in other scripts: Cyrillic letters and full-width colons are meant)

from __future__ import annotations

from typing import Any

import re2

MAX_HEADER_CHARS = 500  # a reply header longer than this is not one
COLONS = (":", "\uff1a")  # CJK clients end headers with a full-width colon
_END = r"\s*[:：]$"
_WORD = r"(?:^|[\s,.(])"  # RE2's \b knows ASCII letters only: Cyrillic and CJK words need this


def _compile(pattern: str) -> Any:
    """RE2: matching time is linear in the candidate, whatever the pattern."""
    return re2.compile("(?i)" + pattern)


# "On … wrote:" and its translations, as Gmail, Apple Mail, Thunderbird, Outlook for Mac, Android and iOS
# mail, Yandex and Mail.ru write them. Tried only on candidates that end with a colon; a candidate must
# also hold a digit or an address (a date, a time, the writer's address) to be taken as a header.
REPLY_HEADERS: dict[str, tuple[str, ...]] = {
    "en": (r"^On\s.*[\s>)](?:wrote|sent)", r"[\s>)]wrote(?:\s.{0,120})?"),
    "de": (r"^Am\s.*[\s>)]schrieb(?:\s.{0,200})?", r"[\s>)]schrieb(?:\s.{0,200})?"),
    "fr": (r"^Le\s.*[\s>)]a\s+écrit", r"[\s>)]a\s+écrit"),
    "es": (r"^El\s.*[\s>)]escribió", r"[\s>)]escribió"),
    "it": (r"^Il\s.*[\s>)]ha\s+scritto", r"[\s>)]ha\s+scritto"),
    "nl": (r"^Op\s.*[\s>)]schreef(?:\s.{0,200})?", r"[\s>)]schreef(?:\s.{0,200})?", r"\shet volgende geschreven"),
    "pt": (r"^Em\s.*[\s>)]escreveu", r"[\s>)]escreveu(?:\s.{0,200})?"),
    "pl": (r"^Wiadomość napisana przez\s.*", r"[\s>)]napisał(?:\(a\)|a)?", r"^W dniu\s.*[\s>)]pisze"),
    "sv": (r"[\s>)]skrev(?:\s.{0,200})?",),
    "cs": (r"[\s>)]napsal(?:\(a\)|a)?",),
    "ru": (_WORD + r"(?:написал(?:\(а\)|а)?|пишет)",),
    "ja": (r"(?:のメール|さんは書きました|書きました)",),
    "zh": (r"(?:写道|寫道)",),
}
REPLY_HEADER = _compile("|".join(f"(?:{p}{_END})" for patterns in REPLY_HEADERS.values() for p in patterns))
# The ones that name where a header begins ("On …", "Am …"): a wrapped header that matches one of them
# starts at its first line.
REPLY_HEADER_START = _compile(
    "|".join(f"(?:{p}{_END})" for patterns in REPLY_HEADERS.values() for p in patterns if p.startswith("^"))
)

# Headers that name no verb: Gmail in Russian or Japanese ("пн, 1 янв. 2024 г. в 10:00, Name <a@b>:"),
# Yandex ("01.02.2024, 10:00, "Name" <a@b>:"), Mail.ru ("Понедельник, … от Name <a@b>:"): a date and an
# address at the end. Taken as a header only when a quoted block follows it.
_ADDRESS = r"[^\s<>()\[\]\"]+@[^\s<>()\[\]\"]+\.[^\s<>()\[\]\"]+"
ADDRESS_HEADER = _compile(r"\d.*[\s<(\[\"]" + _ADDRESS + r"[>)\]\"]*" + _END)

# Outlook's separators, as a whole line: "-----Original Message-----" in the client's language.
_SEPARATOR_WORDS = (
    "Original Message", "Original message", "Reply Message", "Ursprüngliche Nachricht", "Original-Nachricht",
    "Antwort Nachricht",
    "Message d'origine", "Message d’origine", "Mensaje original", "Messaggio originale",
    "Oorspronkelijk bericht", "Origineel bericht", "Mensagem original", "Mensagem Original",
    "Wiadomość oryginalna", "Oryginalna wiadomość", "Ursprungligt meddelande", "Původní zpráva",
    "Původní e-mail", "Исходное сообщение", "Оригинальное сообщение", "元のメッセージ", "原始邮件",
    "原始郵件", "原始消息", "Oprindelig meddelelse", "Opprinnelig melding", "Alkuperäinen viesti",
)
SEPARATOR = _compile(
    r"^\s*-{2,}\s*(?:(?:" + "|".join(re2.escape(w) for w in _SEPARATOR_WORDS) + r")|.{1,120}\swrote)\s*-{2,}\s*$"
)  # "---- John Smith wrote ----" is how older Android mail writes its header
UNDERSCORE_LINE = _compile(r"^\s*(?:_{10,}|-{10,})\s*$")  # Outlook's rule above a header block
# Any "----- Words -----" title line: dropped when it is the last thing above the history.
DASHED_TITLE = _compile(r"^\s*-{3,}\s*\S.{0,60}?\s*-{3,}\s*$")
# GroupWise: ">>> Name <a@b> 04.03.24 9:15 >>>" above unmarked history.
GROUPWISE_HEADER = _compile(r"^\s*>>>\s.*\d.*\s>>>\s*$")

# Forward markers: what follows is a forwarded message, kept whole (it is what the sender passes on).
_FORWARD_WORDS = (
    "Forwarded message", "Forwarded Message", "Weitergeleitete Nachricht", "Message transféré",
    "Mensaje reenviado", "Messaggio inoltrato", "Doorgestuurd bericht", "Mensagem encaminhada",
    "Wiadomość przekazana dalej", "Przekazana wiadomość", "Vidarebefordrat meddelande",
    "Přeposlaná zpráva", "Пересылаемое сообщение", "Переадресованное сообщение", "転送メッセージ",
    "转发的邮件", "轉寄的郵件", "Forwarded",
)
FORWARD = _compile(
    r"^\s*(?:-{2,}\s*(?:" + "|".join(re2.escape(w) for w in _FORWARD_WORDS) + r")\s*-{2,}"
    r"|(?:Begin forwarded message|Anfang der weitergeleiteten (?:E-Mail|Nachricht)|Début du message réexpédié"
    r"|Inicio del mensaje reenviado|Inizio messaggio inoltrato|Begin doorgestuurd bericht"
    r"|Início da mensagem reencaminhada|Mensagem encaminhada|Vidarebefordrat brev|Начало переадресованного сообщения"
    r"|転送されたメッセージ|转发的邮件|以下是转发的邮件)\s*[:：]?)\s*$"
)

# Subject prefixes of a forward, as clients write them in each language.
FORWARD_PREFIXES = frozenset(
    {"fwd", "fw", "wg", "tr", "rv", "i", "inoltro", "doorst", "enc", "pd", "przekaż", "vb", "vs",
     "fwd.", "pfw", "пересл", "転送", "转发", "轉寄"}
)

# Header-block field names (Outlook desktop and web, Apple Mail, Samsung, Gmail forwards), by role.
_FIELDS: dict[str, tuple[str, ...]] = {
    "from": ("From", "Von", "De", "Da", "Van", "Od", "Från", "Fra", "От", "От кого", "差出人", "送信者",
             "发件人", "寄件者", "寄件人"),
    "date": ("Sent", "Date", "Gesendet", "Datum", "Envoyé", "Date d'envoi", "Enviado", "Enviada",
             "Enviado el", "Fecha", "Inviato", "Data", "Verzonden", "Wysłano", "Wysłane", "Skickat",
             "Odesláno", "Sendt", "Отправлено", "Дата", "送信日時", "日付", "发送时间", "日期", "寄件日期",
             "時間"),
    "to": ("To", "An", "À", "A", "Para", "Aan", "Do", "Till", "Komu", "Til", "Кому", "宛先", "收件人",
           "收件者"),
    "subject": ("Subject", "Betreff", "Objet", "Asunto", "Oggetto", "Onderwerp", "Assunto", "Temat",
                "Ämne", "Předmět", "Emne", "Тема", "件名", "主题", "主旨"),
    "cc": ("Cc", "CC", "Kopie", "Copie", "Copia", "DW", "Kopia", "Копия", "抄送", "副本"),
}
FIELD_ROLES: dict[str, str] = {name.lower(): role for role, names in _FIELDS.items() for name in names}


def field_role(line: str) -> str | None:
    """The role of a header-block line ("Von: …" → "from"), or None: a dictionary look-up, no regex."""
    head = line[:40]
    colon = head.find(":")
    if colon < 0:
        colon = head.find(COLONS[1])
    if colon <= 0:
        return None
    return FIELD_ROLES.get(head[:colon].strip(" \t*\xa0").lower())
