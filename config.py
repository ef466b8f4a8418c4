"""The panel's settings, in Flask-AppBuilder's style: upper-case names read at start-up.

Every setting is listed here with its default. Change a value here, or override it without editing
this file with the environment variable of the same name (`CRM_DATABASE_URL=... crm run`); `CRM_CONFIG`
names another file to read instead of this one. `crm config` prints the settings in force, each with
where it came from (default, config.py, environment), secrets masked.

Secrets (the secret key, the first admin's password, encryption keys) do not belong in this file:
leave them None and set them in the environment, or let the panel keep them in the instance folder.
"""

# -- where things are ----------------------------------------------------------------------------

# The database, as an SQLAlchemy URL: postgresql+psycopg2://user:pw@host/db, mysql+pymysql://user:pw@host/db.
# None: the embedded SQLite file instance/crm.db.
CRM_DATABASE_URL = None
# The folder of the schema YAML (tables, fields, options, roles). None: schema/ beside this file.
CRM_SCHEMA_DIR = None
# The folder of report and dashboard YAML. None: reports/ beside the schema folder.
CRM_REPORTS_DIR = None
# The reviewed schema revisions (Alembic). None: migrations/ beside the schema folder.
CRM_MIGRATIONS_DIR = None
# Where the panel keeps its own files: the SQLite database, uploads, exports, backups, generated keys.
# None: instance/ beside this file.
CRM_INSTANCE_DIR = None
# True: apply safe schema changes at start-up; False: only the reviewed revision files (crm schema apply).
CRM_SCHEMA_AUTO_APPLY = True

# -- accounts and secrets (set these in the environment, not here) -------------------------------

# The key that signs sessions. None: generated once into instance/secret_key.
CRM_SECRET_KEY = None
# The first administrator, created when the database has no user yet.
CRM_ADMIN_USERNAME = "admin"
# Its password. None: a random one, printed once at the first start.
CRM_ADMIN_PASSWORD = None
# Keys of encrypted fields, comma-separated (the first encrypts). None: instance/encryption.keys.
CRM_ENCRYPTION_KEYS = None
# The shortest password accepted (it must also not be a common one or contain the user name).
CRM_PASSWORD_MIN_LENGTH = 10
# Failed logins after which an account is locked, and for how long (the rest of the window).
CRM_LOGIN_ACCOUNT_LIMIT = "5 per 15 minutes"
# Failed logins from one address (any accounts) after which that address is paused.
CRM_LOGIN_ADDRESS_LIMIT = "30 per 15 minutes"

# -- what people see -----------------------------------------------------------------------------

# The panel's name in the title bar and on the login page.
APP_NAME = "化工客户管理"
# The language of the screens for a visitor who has not chosen one, and the languages offered.
BABEL_DEFAULT_LOCALE = "zh"
LANGUAGES = {"zh": {"flag": "cn", "name": "中文"}, "en": {"flag": "gb", "name": "English"}}
# The time zone in which times are shown (history, audit log); they are stored in UTC.
CRM_TIMEZONE = "Asia/Shanghai"
# The company named in report headers, and its logo (a PNG or JPEG file). Empty/None: none shown.
CRM_COMPANY_NAME = ""
CRM_COMPANY_LOGO = None
# A TrueType font file that draws Chinese, embedded in PDFs. None: the Noto Sans CJK SC that
# `make install` builds into the virtual environment (app/reports/fontbuild.py).
CRM_PDF_FONT = None
# The most rows a report may print; a report that would print more says so instead of timing out.
CRM_REPORT_ROW_LIMIT = 20000
# The largest file (in MB) an import takes, .xlsx or .csv; a larger one is refused with this limit named.
CRM_IMPORT_MAX_MB = 50
# Imports and exports of more rows than this run as background jobs, with a progress bar.
CRM_JOB_ROWS = 2000
# Where background jobs queue: empty for instance/jobs.db (one machine; `make run` starts a worker), or
# redis://127.0.0.1:6379/0 when several app servers share the work (run `crm worker` beside them).
CRM_JOBS_URL = ""
# The most rows one page of a list (screen or API) shows.
CRM_MAX_PAGE_SIZE = 100

# -- reminders (schema/reminders.yaml; docs/automation.md) ----------------------------------------

# The panel's address as users open it: the links in reminder e-mails and chat messages lead there.
CRM_PANEL_URL = "http://127.0.0.1:8080"
# When each day's digest of due reminders goes out (CRM_TIMEZONE); a worker that was down catches up.
CRM_REMINDER_TIME = "08:00"
# The mail server for the digests; empty: no e-mail (my tasks on the home page still work).
CRM_SMTP_HOST = ""
# Its port: 25, 465 for ssl, 587 for starttls.
CRM_SMTP_PORT = 25
# How the connection is protected: none, starttls or ssl.
CRM_SMTP_SECURITY = "none"
# The login at the mail server, if it asks for one.
CRM_SMTP_USER = ""
# Its password: better given in the environment (CRM_SMTP_PASSWORD=...); `crm config` masks it.
CRM_SMTP_PASSWORD = None
# The sender of the digests, e.g. "化工客户管理 <crm@example.com>" (empty: crm@ the mail server's name).
CRM_SMTP_FROM = ""
# Group chat robots (企业微信 wecom / 钉钉 dingtalk) that get the due reminders of users with these roles:
# [{"name": "销售群", "kind": "wecom", "url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=...",
#   "roles": ["sales", "sales_manager"]},
#  {"name": "财务群", "kind": "dingtalk", "url": "https://oapi.dingtalk.com/robot/send?access_token=...",
#   "secret": "SEC...", "roles": ["finance"]}]
CRM_ROBOTS = None

# -- running behind other servers ----------------------------------------------------------------

# How many reverse proxies (nginx, ...) stand in front: their X-Forwarded-* headers are trusted.
CRM_PROXY_COUNT = 0
# Where rate limits and failed logins are counted, shared by every worker. Empty: the database;
# a Redis URL (redis://127.0.0.1:6379/0) when several servers run.
CRM_RATE_LIMIT_STORAGE = ""
