"""What an operator must know about the site's trust set-up, said at start-up (and by `mailtickets check`)."""

from __future__ import annotations

from mailtickets.ingest.mailbox_config import configured_mailboxes, is_loopback
from mailtickets.notify.smtp import smtp_target
from mailtickets.settings import Settings
from mailtickets.trust.authres import TOPMOST


def security_warnings(settings: Settings) -> list[str]:
    """One sentence per weakness the settings choose; empty when there is none."""
    found = _authentication(settings)
    for mailbox in configured_mailboxes(settings):
        if mailbox.security != "plain" and not mailbox.tls_verify:
            found.append(f"mailbox {mailbox.name}: the IMAP server's TLS certificate is NOT verified (tls_verify)")
        if mailbox.security == "plain" and not is_loopback(mailbox.host):
            found.append(f"mailbox {mailbox.name}: the password goes to {mailbox.host} in clear (allow_plain_login)")
    target = smtp_target(settings)
    if (target.use_tls or target.start_tls) and not target.verify_certificate:
        found.append("smtp_url: the relay's TLS certificate is NOT verified (smtp_tls_verify)")
    if target.plain_login and not is_loopback(target.host):
        found.append(f"smtp_url: the password goes to {target.host} in clear (smtp_allow_plain_login)")
    return found


def _authentication(settings: Settings) -> list[str]:
    if not settings.trusted_authserv_ids and not settings.dkim_verify:
        return [
            "no trusted authserv-id configured (trusted_authserv_ids): senders are not authenticated, "
            "so a forged From address is believed"
        ]
    if TOPMOST in settings.trusted_authserv_ids:
        return [
            "trusted_authserv_ids has 'topmost': the topmost Authentication-Results is believed whatever its id; "
            "safe only if the receiving system always adds one"
        ]
    return []
