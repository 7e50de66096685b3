"""Public mail providers: a domain anyone can get an address at is never one client's domain.

Registering gmail.com for a client would hand every Gmail user's mail to that client (and let any of
them write into its tickets). The list holds the large consumer providers; a client that really owns
such a domain (rare: a provider itself) is registered with force.
"""

from __future__ import annotations

PUBLIC_MAIL_PROVIDERS = frozenset(
    """
    gmail.com googlemail.com outlook.com outlook.de outlook.fr outlook.es outlook.it outlook.co.uk hotmail.com
    hotmail.co.uk hotmail.de hotmail.fr hotmail.es hotmail.it live.com live.co.uk live.de live.fr live.nl
    msn.com passport.com yahoo.com yahoo.co.uk yahoo.de yahoo.fr yahoo.es yahoo.it yahoo.co.jp yahoo.com.br
    ymail.com rocketmail.com aol.com aim.com icloud.com me.com mac.com proton.me protonmail.com protonmail.ch
    pm.me tutanota.com tutanota.de tuta.io tuta.com zoho.com zohomail.com gmx.com gmx.de gmx.net gmx.at gmx.ch
    web.de freenet.de t-online.de arcor.de mail.com email.com fastmail.com fastmail.fm hey.com yandex.com
    yandex.ru ya.ru mail.ru inbox.ru list.ru bk.ru rambler.ru qq.com foxmail.com 163.com 126.com yeah.net
    sina.com sohu.com naver.com daum.net hanmail.net free.fr orange.fr wanadoo.fr laposte.net sfr.fr libero.it
    virgilio.it tiscali.it alice.it seznam.cz centrum.cz wp.pl o2.pl onet.pl interia.pl comcast.net verizon.net
    att.net sbcglobal.net bellsouth.net cox.net charter.net earthlink.net btinternet.com sky.com virginmedia.com
    ntlworld.com talktalk.net bigpond.com optusnet.com.au shaw.ca rogers.com sympatico.ca rediffmail.com
    uol.com.br bol.com.br terra.com.br mailinator.com guerrillamail.com
    """.split()  # noqa: SIM905 (a word list reads better than 120 quoted strings)
)


def is_public_mail_provider(ascii_domain: str) -> bool:
    """The domain, or a domain it belongs to (mail.gmail.com), is a public provider's."""
    labels = ascii_domain.lower().split(".")
    return any(".".join(labels[i:]) in PUBLIC_MAIL_PROVIDERS for i in range(len(labels) - 1))
