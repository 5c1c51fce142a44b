"""gunicorn -c gunicorn.conf.py 'failover.web:create_app()': the settings of failover web.

They live in failover/web/gunicorn_conf.py (packaged, so ``failover web`` reads them in any installation).
"""

from failover.web.gunicorn_conf import *  # noqa: F403
