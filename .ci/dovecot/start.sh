#!/usr/bin/env bash
# Start a throwaway Dovecot on 127.0.0.1:PORT (default: a free port) from .ci/dovecot/dovecot.conf.
# Installs nothing.  Prints lines to eval:
#   export MAILTICKETS_TEST_DOVECOT=127.0.0.1:PORT:u:p   (read by tests/imap_support.py)
#   export MAILTICKETS_TEST_DOVECOT_CONFIG=...           (stop with: dovecot -c "$that" stop)
# With DOVECOT_TLS_CERT and DOVECOT_TLS_KEY (PEM files) it also offers STARTTLS on PORT and implicit TLS on
# a second free port, printed as MAILTICKETS_TEST_DOVECOT_IMAPS_PORT (the soak tests use this).
set -euo pipefail
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT="${1:-$(free_port)}"
BASE="$(mktemp -d /tmp/mailtickets-dovecot.XXXXXX)"
HERE="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$BASE/run" "$BASE/state" "$BASE/mail"
IMAPS_PORT=0
if [ -n "${DOVECOT_TLS_CERT:-}" ] && [ -n "${DOVECOT_TLS_KEY:-}" ]; then
  IMAPS_PORT="$(free_port)"
  printf 'ssl = yes\nssl_cert = <%s\nssl_key = <%s\n' "$DOVECOT_TLS_CERT" "$DOVECOT_TLS_KEY" > "$BASE/tls.conf"
fi
sed -e "s|@BASE@|$BASE|g" -e "s|@PORT@|$PORT|g" -e "s|@IMAPS_PORT@|$IMAPS_PORT|g" "$HERE/dovecot.conf" > "$BASE/dovecot.conf"
echo 'u:{PLAIN}p' > "$BASE/passwd"
chmod 755 "$BASE"
chown -R dovecot:dovecot "$BASE/mail"
dovecot -c "$BASE/dovecot.conf" 2>>"$BASE/dovecot.log"  # not our stderr: the daemon would hold it open
for _ in $(seq 50); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    echo "export MAILTICKETS_TEST_DOVECOT=127.0.0.1:$PORT:u:p"
    echo "export MAILTICKETS_TEST_DOVECOT_CONFIG=$BASE/dovecot.conf"
    [ "$IMAPS_PORT" = 0 ] || echo "export MAILTICKETS_TEST_DOVECOT_IMAPS_PORT=$IMAPS_PORT"
    exit 0
  fi
  sleep 0.1
done
echo "dovecot did not start; see $BASE/dovecot.log" >&2
cat "$BASE/dovecot.log" >&2 || true
exit 1
