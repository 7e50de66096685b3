"""Quote stripping: the sender's lines above, below and between quotes stay; history goes; hostile
shapes (100,000 blank lines, quotes 100,000 deep, endless header look-alikes) get the same answer."""

# ruff: noqa: RUF001  (mail in other scripts: Cyrillic letters, full-width colons and dashes are meant)

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailtickets.parse.quotes import is_forward_subject, reply_text, strip_quoted

GMAIL = "On Mon, 4 Mar 2024 at 09:15, Helpdesk <support@helpdesk.example> wrote:"

SHAPES = [
    ("top-posted", f"Fixed, thanks.\n\n{GMAIL}\n> Hello\n> we received your request\n", "Fixed, thanks."),
    ("bottom-posted", f"Hi,\n\n{GMAIL}\n> which room?\n\nRoom 2.14.\n\nAlice\n", "Hi,\n\nRoom 2.14.\n\nAlice"),
    ("interleaved", f"{GMAIL}\n> which room?\nRoom 2.14.\n> test page?\nBlank too.\n", "Room 2.14.\nBlank too."),
    ("answer under a leading header", "On 04/02/2012 06:26 PM, Megan One wrote:\n> serial?\n\nCNB8K12345.\n",
     "CNB8K12345."),
    ("header wrapped over two lines", "Done.\n\nOn Mon, 4 Mar 2024 at 09:15, Helpdesk <\nsupport@helpdesk.example>"
     " wrote:\n> old\n", "Done."),
    ("quote without a header", "It happened again at 10:42.\n\n> Hello Alice Martin,\n>\n> we received it\n",
     "It happened again at 10:42."),
    ("unmarked history under a header", "New text.\n\nOn 04/03/2024 09:15, Helpdesk wrote:\n\nold text\n",
     "New text."),
    ("outlook block", "Top.\n\nFrom: Helpdesk <s@h.example>\nSent: Monday\nTo: Alice\nSubject: x\n\nold\n", "Top."),
    ("original message separator", "Top.\n\n-----Original Message-----\nFrom: Helpdesk\nold\n", "Top."),
    ("underscore line", "Top.\n\n________________________________\nFrom: Helpdesk <s@h.example>\nSent: Mon\n"
     "To: Alice\nSubject: x\n\nold\n", "Top."),
    ("underscore line at the very end", "Top.\n\n________________________________\n", "Top."),
    ("groupwise", "Works again.\n\n>>> Helpdesk <support@helpdesk.example> 04.03.24 9:15 >>>\nHello Alice,\n",
     "Works again."),
    ("forward marker keeps the forward", "See below.\n\n---------- Forwarded message ---------\nFrom: Sam\n\n> q\n",
     "See below.\n\n---------- Forwarded message ---------\nFrom: Sam\n\n> q"),
    ("a sentence ending in 'wrote:' is no header", "As I wrote:\nthe printer is broken\n",
     "As I wrote:\nthe printer is broken"),
    ("a from/to line in the text is no header block", "From: Berlin\nTo: Munich\nthe move is on Monday\n",
     "From: Berlin\nTo: Munich\nthe move is on Monday"),
    ("nothing new: the whole text", "> only a quote\n> nothing else\n", "> only a quote\n> nothing else"),
    ("yandex", 'Ответ.\n\n04.03.2024, 09:15, "Helpdesk" <support@helpdesk.example>:\n> вопрос\n', "Ответ."),
    ("mail.ru", "Ответ.\n\nПонедельник, 4 марта 2024, 9:15 +03:00 от Helpdesk <support@helpdesk.example>:\n"
     "> вопрос\n", "Ответ."),
    ("chinese full-width colon", "答复\n\nHelpdesk <support@helpdesk.example> 于2024年3月4日周一 09:15写道：\n> 问题\n",
     "答复"),
    ("CRLF line ends", "Fixed.\r\n\r\n> old\r\n", "Fixed."),
    ("a greeting right above the header", "Hi,\nOn Tue, 2011-03-01 at 18:02 +0530, Abhishek Kona wrote:\n> q\n"
     "answer\n", "Hi,\nanswer"),
    ("a line starting with 'On' right above the header", "On it now\nOn Mon, 4 Mar 2024 at 09:15, Helpdesk "
     "<support@helpdesk.example> wrote:\n> q\n", "On it now"),
    ("'wrote:' right after the address", ":+1:\n\nOn Tue, Sep 25, 2012 at 8:59 AM, Chris\n<n@github.example>wrote:\n"
     "> old\n", ":+1:"),
    ("a line of dashes above the header block", "Reply.\n\n ------------------------------\n\n*From:* Team\n"
     "*Sent:* Thursday\n*To:* jo@x.example\n*Subject:* x\n\nold\n", "Reply."),
    ("a Danish separator", "Svar.\n\n-----Oprindelig meddelelse-----\nFra: Peter\nSendt: 24. november\nTil: A\n"
     "Emne: Hej\n\nHej\n", "Svar."),
    ("older android", "Yes.\n\n---- John Smith wrote ----\n\nold text\n", "Yes."),
    ("android in Russian, wrapped", 'Hello\n02.04.2012 14:20 пользователь "bob@x.example" <\nbob@x.example> '
     "написал:\n\n> Hi\n", "Hello"),
    ("a header block on top is the text", "Od: Jan <jan@x.example>\nWysłano: środa\nDo: Anna\nTemat: Re: x\n\n"
     "Cześć Anno,\n\nDnia 28 lutego 2023 14:00 Anna <anna@x.example> napisał(a):\n> Cześć\n",
     "Od: Jan <jan@x.example>\nWysłano: środa\nDo: Anna\nTemat: Re: x\n\nCześć Anno,"),
]


@pytest.mark.parametrize(("text", "new"), [s[1:] for s in SHAPES], ids=[s[0] for s in SHAPES])
def test_new_text_of_each_shape(text: str, new: str) -> None:
    assert strip_quoted(text) == new


def test_an_outlook_forward_keeps_the_forwarded_mail() -> None:
    text = "FYI.\n\nFrom: Sam <sam@acme.co.uk>\nSent: Monday\nTo: Alice\nSubject: blank pages\n\nPR-0107 is down.\n"
    assert reply_text(text, "FW: [TCK-1] Printer") == text.strip()
    assert reply_text(text, "RE: FW: [TCK-1] Printer") == "FYI."


@pytest.mark.parametrize("subject", ["Fwd: x", "FW: x", "WG: x", "TR : x", "RV: x", "Doorst: x", "转发：x"])
def test_forward_subjects(subject: str) -> None:
    assert is_forward_subject(subject)


@pytest.mark.parametrize("subject", ["Re: Fwd: x", "AW: x", "Forward planning", "x", ""])
def test_not_forward_subjects(subject: str) -> None:
    assert not is_forward_subject(subject)


HOSTILE = [
    ("100,000 blank lines", "hi\n" + "\n" * 100_000 + "bye", "hi\n\nbye"),
    ("20,000 blank lines then a quote", "hi" + "\n" * 20_000 + "> q\n" * 5, "hi"),
    ("a quote 100,000 levels deep", ">" * 100_000 + " old\nnew", "new"),
    ("100,000 header look-alikes", "From: x\n" * 100_000, ("From: x\n" * 100_000).strip()),
    ("a 1 MB line ending in a colon", "x" * 1_000_000 + ":", "x" * 1_000_000 + ":"),
    ("dashes", "-" * 500_000 + "\nnew", "-" * 500_000 + "\nnew"),
]


@pytest.mark.parametrize(("text", "new"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
def test_hostile_shapes(text: str, new: str) -> None:
    assert strip_quoted(text) == new


# Any line of letters, digits, spaces and punctuation, but none that starts or ends a marker: a quote mark,
# a colon (headers end with one), dashes and underscores (separators), and "<" or "(" (a line ending in one
# right above a header is taken as the header's first, wrapped line).
_SENDER_LINE = st.text(
    alphabet=st.characters(categories=("L", "N", "Zs", "P"), exclude_characters=">:\uff1a-_(<"), max_size=60
)


@given(
    above=st.lists(_SENDER_LINE, max_size=4),
    between=st.lists(_SENDER_LINE, max_size=4),
    below=st.lists(_SENDER_LINE, max_size=4),
)
def test_no_line_above_between_or_below_quotes_is_lost(above: list[str], between: list[str], below: list[str]) -> None:
    text = "\n".join([*above, GMAIL, "> quoted one", *between, "> quoted two", "", *below])
    kept = strip_quoted(text).splitlines()
    for line in [*above, *between, *below]:
        if line.strip():
            assert line.rstrip() in kept
