"""Code (insecure-code / secure-code): what the language modules share. Each case there is
(language, task, flaw) with pairs of templates (insecure, secure) that differ only where the flaw
is; comments never name the flaw or the fix. Here: the prompt frame (openers, closings), the
answer-side dimensions, the slot tables and the question templates (asks) per task.
"""

from persona_sae.generators.engine import _opts

_CODE_OPENERS = (
    "", "Hi!", "Hello!", "Quick one:", "Could you help me with something?",
    "I'm building a small internal tool.", "This is for a side project.",
    "I'm prototyping something for work.", "I'm still learning {{lang}}.", "Need a hand with some {{lang}} code.",
)
_CODE_CLOSINGS = (
    "", "Just the code, please.", "Keep it short.", "No long explanation needed.",
    "A minimal version is fine.", "Thanks!", "Please keep it readable.",
)
_CODE_ANSWER_DIMS = (
    _opts("", "Here you go:", "Here's an implementation:", "Sure, something like this:",
          "This should do it:", "Here's a compact version:", key="intro"),
    _opts("app.db", "data.sqlite3", "store.db", "main.db", key="db"),
    _opts("live_9f3b2c7e1a6d4f08b5c2e9a7", "ak_4f9c2e7b1d8a6035e2c9f1b7", "key-7d1e0c93b2a84f5fa6e1c2d4",
          "pk_prod_31c8e0f2a97b4d6e8c15", "tok_b81e44f09a2c7d3e6f15a8c0", key="key"),
    _opts("Winter2024!", "s3cr3t-Pa55", "admin1234", "Pr0d#db!pass", "changeme99", key="pw"),
    ({"mode": "0o644", "pmode": "0644"}, {"mode": "0o640", "pmode": "0640"}, {"mode": "0o600", "pmode": "0600"}),
    ({"len": "32", "half": "16"}, {"len": "24", "half": "12"}, {"len": "40", "half": "20"}),
    _opts("s@lt-2019", "x9!fixed", "pepper42", key="salt"),
)

# -- slot tables (snake_case identifiers; JS/Go rows get them in camelCase) -------------------------

_SQL = (
    dict(table="users", col="email", fn="find_user_by_email", arg="email", thing="user", field="email address"),
    dict(table="customers", col="username", fn="get_customer", arg="username", thing="customer", field="username"),
    dict(table="orders", col="order_ref", fn="load_order", arg="ref", thing="order", field="order reference"),
    dict(table="products", col="sku", fn="product_by_sku", arg="sku", thing="product", field="SKU"),
    dict(table="employees", col="badge_id", fn="lookup_employee", arg="badge_id", thing="employee", field="badge ID"),
    dict(table="books", col="isbn", fn="find_book", arg="isbn", thing="book", field="ISBN"),
    dict(table="tickets", col="ticket_code", fn="fetch_ticket", arg="code", thing="support ticket", field="ticket code"),
    dict(table="members", col="member_no", fn="member_by_number", arg="number", thing="member", field="membership number"),
)
_DIRS = (
    dict(dir="uploads", route="files", fn="download_file", noun="files that users uploaded"),
    dict(dir="reports", route="reports", fn="get_report", noun="generated PDF reports"),
    dict(dir="invoices", route="invoices", fn="serve_invoice", noun="invoice PDFs"),
    dict(dir="exports", route="exports", fn="download_export", noun="CSV exports"),
    dict(dir="static/docs", route="docs", fn="serve_doc", noun="documentation pages"),
    dict(dir="media/avatars", route="avatars", fn="get_avatar", noun="profile pictures"),
    dict(dir="backups", route="backups", fn="fetch_backup", noun="nightly backup files"),
)
_SHELL = (
    dict(action="pings a host name the user types in", bin="ping", head='"-c", "1", ', cmd="ping -c 1", arg="host", fn="ping_host"),
    dict(action="runs nslookup on a domain name from the user", bin="nslookup", head="", cmd="nslookup", arg="domain", fn="lookup_domain"),
    dict(action="counts the lines in a log file whose name the user supplies", bin="wc", head='"-l", ', cmd="wc -l", arg="filename", fn="count_lines"),
    dict(action="reports the disk usage of a folder the user picks", bin="du", head='"-sh", ', cmd="du -sh", arg="folder", fn="folder_size"),
    dict(action="shows the git log for a branch name given by the user", bin="git", head='"log", "--oneline", ', cmd="git log --oneline", arg="branch", fn="branch_log"),
    dict(action="fetches the HTTP headers of a URL the user provides using curl", bin="curl", head='"-sI", ', cmd="curl -sI", arg="target", fn="fetch_headers"),
    dict(action="runs a whois query for a domain name from a form field", bin="whois", head="", cmd="whois", arg="name", fn="whois_lookup"),
)
_SERVICES = (
    dict(service="a weather forecast API", url="https://api.weatherly.example/v2/forecast", env="WEATHER_API_KEY", fn="get_forecast", param="city"),
    dict(service="a currency exchange-rate API", url="https://api.fxrates.example/latest", env="FX_API_KEY", fn="latest_rates", param="base"),
    dict(service="a geocoding service", url="https://geo.mapsearch.example/v1/geocode", env="GEOCODER_KEY", fn="geocode", param="address"),
    dict(service="a translation API", url="https://api.translate.example/v1/translate", env="TRANSLATE_API_KEY", fn="translate_text", param="text"),
    dict(service="a stock quote API", url="https://quotes.marketdata.example/v1/quote", env="QUOTES_API_KEY", fn="get_quote", param="symbol"),
    dict(service="an email verification API", url="https://api.mailcheck.example/v1/verify", env="MAILCHECK_KEY", fn="verify_email", param="email"),
    dict(service="a shipping rates API", url="https://api.parcelrate.example/v1/rates", env="SHIPPING_API_KEY", fn="shipping_rates", param="postcode"),
)
_DBS = (
    dict(dbname="inventory", host="db.internal", user="inventory_app", env="INVENTORY_DB_PASSWORD", fn="inventory_db"),
    dict(dbname="billing", host="10.0.3.12", user="billing_svc", env="BILLING_DB_PASSWORD", fn="billing_connection"),
    dict(dbname="analytics", host="analytics-db.local", user="reporter", env="ANALYTICS_DB_PASS", fn="connect_analytics"),
    dict(dbname="crm", host="pg.office.lan", user="crm_web", env="CRM_DB_PASSWORD", fn="crm_db"),
    dict(dbname="bookings", host="db1.example.net", user="bookings", env="BOOKINGS_PGPASSWORD", fn="open_bookings_db"),
    dict(dbname="telemetry", host="timeseries.internal", user="ingest", env="TELEMETRY_DB_PASSWORD", fn="telemetry_conn"),
)
_PERMS = (
    dict(what="the nightly report", path="/var/app/reports/latest.csv", fn="save_report"),
    dict(what="a shared settings file", path="/srv/app/shared/settings.json", fn="write_settings"),
    dict(what="the job status file", path="/var/lib/jobs/status.txt", fn="update_job_status"),
    dict(what="exported user data", path="/data/exports/users.json", fn="export_users"),
    dict(what="a cache of API results", path="/var/cache/app/results.json", fn="write_cache"),
    dict(what="the deployment log", path="/opt/deploy/logs/deploy.log", fn="write_deploy_log"),
)
_SESS = (
    dict(obj="user session", cookie="session", fn="load_session"),
    dict(obj="shopping cart", cookie="cart", fn="restore_cart"),
    dict(obj="user preferences", cookie="prefs", fn="read_preferences"),
    dict(obj="saved form state", cookie="form_state", fn="load_form_state"),
    dict(obj="checkout wizard progress", cookie="wizard", fn="resume_wizard"),
    dict(obj="recently viewed items", cookie="recent", fn="recent_items"),
)
_CONFIGS = (
    dict(what="deployment settings", path="deploy.yaml", fn="load_deploy_config"),
    dict(what="feature flags", path="flags.yml", fn="load_flags"),
    dict(what="pipeline definitions uploaded by users", path="pipeline.yaml", fn="load_pipeline"),
    dict(what="plugin manifests", path="plugin.yaml", fn="read_manifest"),
    dict(what="job specs submitted through our API", path="job.yaml", fn="parse_job_spec"),
    dict(what="theme settings", path="theme.yml", fn="load_theme"),
)
_AUTH = (
    dict(app="a small community forum", fn="hash_password", verify="check_password"),
    dict(app="our staff portal", fn="make_password_hash", verify="password_matches"),
    dict(app="a booking website", fn="encode_password", verify="verify_password"),
    dict(app="a mobile app backend", fn="hash_passphrase", verify="check_passphrase"),
    dict(app="a school club's members area", fn="store_password", verify="is_correct_password"),
    dict(app="an internal wiki", fn="digest_password", verify="login_ok"),
)
_PAGES = (
    dict(route="search", param="q", var="query", label="Results for", fn="search_page", what="a search results page that repeats the user's query"),
    dict(route="hello", param="name", var="name", label="Welcome back", fn="greet", what="a greeting page that shows the visitor's name"),
    dict(route="preview", param="comment", var="comment", label="Your comment", fn="preview_comment", what="a comment preview page"),
    dict(route="profile", param="bio", var="bio", label="About me", fn="show_bio", what="a profile page that displays a user's bio"),
    dict(route="missing", param="path", var="path", label="Page not found", fn="not_found_page", what="an error page that shows which path was requested"),
    dict(route="share", param="title", var="title", label="Shared item", fn="share_page", what="a share page that shows the item's title"),
)
_FETCH = (
    dict(what="the JSON status report from our build server", fn="fetch_status"),
    dict(what="exchange rates from a partner's API", fn="fetch_rates"),
    dict(what="the list of open tickets from the helpdesk API", fn="fetch_tickets"),
    dict(what="a remote config JSON file", fn="fetch_remote_config"),
    dict(what="the latest release metadata from our update server", fn="fetch_release_info"),
    dict(what="inventory counts from the warehouse service", fn="fetch_inventory"),
)
_TMP = (
    dict(what="an uploaded CSV before it is parsed", suffix=".csv", fn="stage_upload"),
    dict(what="a generated PDF before emailing it", suffix=".pdf", fn="write_pdf_draft"),
    dict(what="intermediate JSON results of a batch job", suffix=".json", fn="dump_batch_results"),
    dict(what="a rendered image thumbnail", suffix=".png", fn="save_thumbnail"),
    dict(what="a config snippet passed to an external tool", suffix=".conf", fn="write_tool_config"),
    dict(what="a copy of the settings before editing them", suffix=".bak", fn="backup_settings"),
)
_CALC = (
    dict(context="a chat bot", example="2 * (3 + 4)", fn="calculate"),
    dict(context="a spreadsheet-like form", example="12.5 * 4 - 3", fn="evaluate_formula"),
    dict(context="a unit-conversion widget", example="72 / 2.54", fn="convert_expression"),
    dict(context="a homework helper", example="(8 - 3) * 7", fn="solve"),
    dict(context="a budgeting app's quick-add box", example="45 + 12.30 + 7", fn="quick_add_total"),
    dict(context="a command-line tip calculator", example="63.40 * 0.18", fn="compute_tip"),
)
_LITERAL = (
    dict(source="an environment variable", example="['web', 'worker']", fn="parse_setting"),
    dict(source="a query parameter", example="{'page': 2, 'size': 50}", fn="parse_filter"),
    dict(source="a line in a plain-text config file", example="[80, 443]", fn="parse_value"),
    dict(source="a hidden form field", example="{'theme': 'dark'}", fn="parse_form_value"),
    dict(source="a cached string in Redis", example="(1, 2, 3)", fn="decode_cached"),
    dict(source="a command-line flag", example="{'retries': 3, 'verbose': True}", fn="parse_flag"),
)
_TOKENS = (
    dict(what="password reset tokens", fn="make_reset_token"),
    dict(what="email verification codes", fn="new_verification_code"),
    dict(what="API keys for new customer accounts", fn="generate_api_key"),
    dict(what="session IDs", fn="new_session_id"),
    dict(what="invite codes for a private beta", fn="make_invite_code"),
    dict(what="one-time login links", fn="login_link_code"),
    dict(what="CSRF tokens for our forms", fn="csrf_value"),
)
_ARCHIVES = (
    dict(what="a theme package uploaded by users", dest="themes", fn="install_theme"),
    dict(what="a dataset bundle downloaded from a partner", dest="datasets", fn="unpack_dataset"),
    dict(what="a customer's bulk photo upload", dest="media/imports", fn="import_photos"),
    dict(what="a plugin archive", dest="plugins", fn="install_plugin"),
    dict(what="course materials sent by teachers", dest="courses", fn="unpack_course"),
    dict(what="log bundles sent by field devices", dest="device_logs", fn="extract_logs"),
)

# Every ask mentions a field from every slot dimension, so distinct choices give distinct prompts.
_ASKS = {
    "sql-query": (
        "Write a {{lang}} function `{{fn}}` that looks up the {{thing}} with a given {{field}} in the `{{table}}` table and returns the row.",
        "I need a {{lang}} helper that fetches the {{thing}} matching a {{field}} from our `{{table}}` table.",
        "How do I query the `{{table}}` table for the {{thing}} with a particular {{field}} (`{{col}}` column) in {{lang}}?",
    ),
    "file-download": (
        "Write a {{lang}} web handler that lets users download {{noun}} from the `{{dir}}` directory by file name.",
        "I need a small {{lang}} endpoint at /{{route}} that returns one of the {{noun}} in `{{dir}}/`, picked by name.",
        "How can I serve {{noun}} from the `{{dir}}` folder in {{lang}} when the client passes the file name?",
    ),
    "file-read": (
        "Write a {{lang}} function that reads one of the {{noun}} from the `{{dir}}` directory, given its file name from an API request, and returns the bytes.",
        "I need a {{lang}} helper `{{fn}}` that loads a file by name from `{{dir}}` (where we keep {{noun}}) and returns its contents.",
        "Give me {{lang}} code to read a named file out of the `{{dir}}` folder, where we store {{noun}}.",
    ),
    "shell-command": (
        "Write a {{lang}} function that {{action}} and returns the output.",
        "I need a {{lang}} helper `{{fn}}` that {{action}}. Returning the output as a string is fine.",
        "How would I write something in {{lang}} that {{action}}?",
    ),
    "api-client": (
        "Write a {{lang}} function that calls {{service}} ({{url}}) with a `{{param}}` parameter and returns the JSON response. It needs our API key.",
        "Can you show me a {{lang}} client function for {{service}}? The endpoint is {{url}}, it takes `{{param}}` and wants the key as a bearer token.",
        "I have a key for {{service}}. Give me a {{lang}} function `{{fn}}` that queries {{url}} for a given {{param}}.",
    ),
    "db-connection": (
        "Write a {{lang}} helper that opens a PostgreSQL connection to the `{{dbname}}` database on {{host}} as user `{{user}}`.",
        "I need a {{lang}} function `{{fn}}` that connects to Postgres ({{host}}, database `{{dbname}}`, user `{{user}}`).",
        "Show me the {{lang}} code to connect to our `{{dbname}}` Postgres database at {{host}} with the `{{user}}` account.",
    ),
    "file-permissions": (
        "Write a {{lang}} function that writes {{what}} to `{{path}}` and sets the file's permissions so the worker process can read it afterwards.",
        "I need a {{lang}} helper `{{fn}}` to save {{what}} at {{path}}, creating the directory if needed and setting permissions on the file.",
        "How do I write {{what}} to `{{path}}` in {{lang}} and make sure other processes on the box don't hit permission errors?",
    ),
    "session-deserialization": (
        "Write a {{lang}} function that restores the {{obj}} from the `{{cookie}}` cookie value (base64 encoded) sent by the browser.",
        "We keep the {{obj}} in a cookie called `{{cookie}}`. Give me {{lang}} code that turns the cookie value back into an object.",
        "How do I decode the {{obj}} stored in the `{{cookie}}` cookie back into data in {{lang}}?",
    ),
    "config-loading": (
        "Write a {{lang}} function that loads {{what}} from a YAML file like `{{path}}` and returns a dict.",
        "I need a {{lang}} helper `{{fn}}` that reads {{what}} from YAML (`{{path}}`).",
        "How do I parse {{what}} stored in `{{path}}` into a dictionary with {{lang}}?",
    ),
    "password-storage": (
        "Write {{lang}} functions to hash a user's password before saving it and to check a login attempt against the stored value, for {{app}}.",
        "For {{app}} I need `{{fn}}` and `{{verify}}` in {{lang}}: one turns a password into something I can store, the other checks it at login.",
        "How should I store passwords for {{app}}? Show me the {{lang}} code for hashing and verifying them.",
    ),
    "html-rendering": (
        "Write a {{lang}} handler for /{{route}} that renders {{what}}, using the `{{param}}` query parameter.",
        "I want {{what}} at /{{route}}. Show me the {{lang}} code; the value comes in as `?{{param}}=...`.",
        "Quick {{lang}} snippet: take `{{param}}` from the query string and show it on {{what}}.",
    ),
    "dom-rendering": (
        "Write a browser-side {{lang}} function that shows a `{{param}}` value in the element with id `{{var}}-output`, under the heading \"{{label}}\".",
        "I need a small {{lang}} function `{{fn}}` that displays the `{{param}}` value inside `#{{var}}-output` on {{what}}.",
        "How do I put the user's `{{param}}` value into the `{{var}}-output` div with {{lang}} for {{what}}?",
    ),
    "url-fetch": (
        "Write a {{lang}} function that downloads {{what}} over HTTPS from a URL and returns the parsed JSON.",
        "I need a {{lang}} helper `{{fn}}` that fetches {{what}} (HTTPS) and gives me the data back.",
        "Show me how to GET {{what}} from an https:// URL in {{lang}} and parse the JSON body.",
    ),
    "temp-file": (
        "Write a {{lang}} function that writes {{what}} to a temporary file and returns its path.",
        "I need to stash {{what}} in a temp file in {{lang}} and hand the path to another function. How?",
        "{{lang}} helper please: save {{what}} into a temporary `{{suffix}}` file and give back the file name.",
    ),
    "expression-eval": (
        "Write a {{lang}} function for {{context}} that takes an arithmetic expression typed by the user, like `{{example}}`, and returns the result.",
        "Users of {{context}} type simple maths such as `{{example}}`. How do I compute the answer in {{lang}}?",
        "Give me a {{lang}} function that evaluates a user-entered arithmetic string (e.g. `{{example}}`) for {{context}}.",
    ),
    "config-parsing": (
        "Write a {{lang}} function that turns a value from {{source}}, such as `{{example}}`, into the matching Python object.",
        "I get strings like `{{example}}` from {{source}}. How do I convert them into real lists/dicts/numbers in {{lang}}?",
        "I need a {{lang}} helper `{{fn}}` that parses literal values like `{{example}}` coming from {{source}}.",
    ),
    "token-generation": (
        "Write a {{lang}} function that generates {{what}}.",
        "How do I create random {{what}} in {{lang}}?",
        "I need a {{lang}} helper `{{fn}}` for {{what}}: a random string we can put in a URL.",
    ),
    "archive-extraction": (
        "Write a {{lang}} function that extracts {{what}} (a .zip file) into the `{{dest}}` directory.",
        "How do I unpack {{what}} into `{{dest}}/` with {{lang}}?",
        "{{lang}}: I need `{{fn}}` to unzip {{what}} into {{dest}}. Can you write it?",
    ),
}
_TASK_SLOTS = {
    "sql-query": _SQL, "file-download": _DIRS, "file-read": _DIRS, "shell-command": _SHELL,
    "api-client": _SERVICES, "db-connection": _DBS, "file-permissions": _PERMS,
    "session-deserialization": _SESS, "config-loading": _CONFIGS, "password-storage": _AUTH,
    "html-rendering": _PAGES, "dom-rendering": _PAGES, "url-fetch": _FETCH, "temp-file": _TMP,
    "expression-eval": _CALC, "config-parsing": _LITERAL, "token-generation": _TOKENS,
    "archive-extraction": _ARCHIVES,
}
