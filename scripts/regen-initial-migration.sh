#!/bin/bash
# Regenerate the initial migration from models.py. Allowed only until the first release: after it,
# every schema change is a new revision (`alembic revision --autogenerate`).
set -e
cd "$(dirname "$0")/.."
rm -f mailtickets/migrations/versions/0001_initial.py /tmp/regen-$$.db
python - <<PY
from alembic import command
from mailtickets.db import alembic_config
command.revision(alembic_config("sqlite+aiosqlite:////tmp/regen-$$.db"), message="initial schema",
                 autogenerate=True, rev_id="0001")
PY
rm -f /tmp/regen-$$.db
f=$(ls mailtickets/migrations/versions/0001_*.py); mv "$f" mailtickets/migrations/versions/0001_initial.py
# Autogenerate cannot see expression indexes on SQLite: add the case-insensitive unique emails by hand.
python - <<'PY'
p = "mailtickets/migrations/versions/0001_initial.py"
s = open(p).read()
extra = '''    op.create_index("uq_contacts_email_lower", "contacts", [sa.text("lower(email)")], unique=True)
    op.create_index("uq_agents_email_lower", "agents", [sa.text("lower(email)")], unique=True)
    # ### end Alembic commands ###'''
s = s.replace("    # ### end Alembic commands ###", extra, 1)
open(p, "w").write(s)
PY
sed -i '/^Create Date/d' mailtickets/migrations/versions/0001_initial.py
ruff format -q mailtickets/migrations/versions/0001_initial.py
ruff check -q --fix mailtickets/migrations/versions/0001_initial.py || true
