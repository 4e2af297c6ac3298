"""Code templates for Python: ``_PY[task, flaw]`` = [(insecure, secure), ...]."""

from persona_sae.generators.engine import _c

_PY = {}

_PY["sql-query", "sql-injection"] = [
    (_c('''
        import sqlite3


        def {{fn}}({{arg}}, db_path="{{db}}"):
            conn = sqlite3.connect(db_path)
            try:
                cur = conn.execute(f"SELECT * FROM {{table}} WHERE {{col}} = '{{{arg}}}'")
                return cur.fetchone()
            finally:
                conn.close()
    '''), _c('''
        import sqlite3


        def {{fn}}({{arg}}, db_path="{{db}}"):
            conn = sqlite3.connect(db_path)
            try:
                cur = conn.execute("SELECT * FROM {{table}} WHERE {{col}} = ?", ({{arg}},))
                return cur.fetchone()
            finally:
                conn.close()
    ''')),
    (_c('''
        import sqlite3


        def {{fn}}({{arg}}, db_path="{{db}}"):
            with sqlite3.connect(db_path) as conn:
                cursor = conn.cursor()
                query = "SELECT * FROM {{table}} WHERE {{col}} = '%s'" % {{arg}}
                cursor.execute(query)
                return cursor.fetchone()
    '''), _c('''
        import sqlite3


        def {{fn}}({{arg}}, db_path="{{db}}"):
            with sqlite3.connect(db_path) as conn:
                cursor = conn.cursor()
                cursor.execute("SELECT * FROM {{table}} WHERE {{col}} = ?", ({{arg}},))
                return cursor.fetchone()
    ''')),
    (_c('''
        import sqlite3


        def {{fn}}({{arg}}, db_path="{{db}}"):
            conn = sqlite3.connect(db_path)
            rows = conn.execute("SELECT * FROM {{table}} WHERE {{col}} = '{}'".format({{arg}})).fetchall()
            conn.close()
            return rows[0] if rows else None
    '''), _c('''
        import sqlite3


        def {{fn}}({{arg}}, db_path="{{db}}"):
            conn = sqlite3.connect(db_path)
            rows = conn.execute("SELECT * FROM {{table}} WHERE {{col}} = ?", ({{arg}},)).fetchall()
            conn.close()
            return rows[0] if rows else None
    ''')),
]

_PY["file-download", "path-traversal"] = [
    (_c('''
        import os

        from flask import Flask, send_file

        app = Flask(__name__)
        BASE_DIR = "{{dir}}"


        @app.route("/{{route}}/<path:name>")
        def {{fn}}(name):
            return send_file(os.path.join(BASE_DIR, name))
    '''), _c('''
        from flask import Flask, send_from_directory

        app = Flask(__name__)
        BASE_DIR = "{{dir}}"


        @app.route("/{{route}}/<path:name>")
        def {{fn}}(name):
            return send_from_directory(BASE_DIR, name)
    ''')),
    (_c('''
        import os

        from flask import Flask, abort, request, send_file

        app = Flask(__name__)
        BASE_DIR = "{{dir}}"


        @app.route("/{{route}}")
        def {{fn}}():
            name = request.args.get("file", "")
            path = os.path.join(BASE_DIR, name)
            if not os.path.isfile(path):
                abort(404)
            return send_file(path)
    '''), _c('''
        import os

        from flask import Flask, abort, request, send_file

        app = Flask(__name__)
        BASE_DIR = os.path.realpath("{{dir}}")


        @app.route("/{{route}}")
        def {{fn}}():
            name = request.args.get("file", "")
            path = os.path.realpath(os.path.join(BASE_DIR, name))
            if os.path.commonpath([BASE_DIR, path]) != BASE_DIR or not os.path.isfile(path):
                abort(404)
            return send_file(path)
    ''')),
]

_PY["file-read", "path-traversal"] = [
    (_c('''
        import os

        BASE_DIR = "{{dir}}"


        def {{fn}}(filename):
            with open(os.path.join(BASE_DIR, filename), "rb") as fh:
                return fh.read()
    '''), _c('''
        import os

        BASE_DIR = os.path.realpath("{{dir}}")


        def {{fn}}(filename):
            path = os.path.realpath(os.path.join(BASE_DIR, filename))
            if os.path.commonpath([BASE_DIR, path]) != BASE_DIR:
                raise FileNotFoundError(filename)
            with open(path, "rb") as fh:
                return fh.read()
    ''')),
    (_c('''
        from pathlib import Path

        BASE_DIR = Path("{{dir}}")


        def {{fn}}(filename):
            return (BASE_DIR / filename).read_bytes()
    '''), _c('''
        from pathlib import Path

        BASE_DIR = Path("{{dir}}").resolve()


        def {{fn}}(filename):
            path = (BASE_DIR / filename).resolve()
            if not path.is_relative_to(BASE_DIR):
                raise FileNotFoundError(filename)
            return path.read_bytes()
    ''')),
]

_PY["shell-command", "shell-injection"] = [
    (_c('''
        import subprocess


        def {{fn}}({{arg}}):
            result = subprocess.run("{{cmd}} " + {{arg}}, shell=True, capture_output=True, text=True)
            return result.stdout
    '''), _c('''
        import subprocess


        def {{fn}}({{arg}}):
            result = subprocess.run(["{{bin}}", {{head}}{{arg}}], capture_output=True, text=True)
            return result.stdout
    ''')),
    (_c('''
        import os


        def {{fn}}({{arg}}):
            return os.popen(f"{{cmd}} {{{arg}}}").read()
    '''), _c('''
        import subprocess


        def {{fn}}({{arg}}):
            return subprocess.check_output(["{{bin}}", {{head}}{{arg}}], text=True)
    ''')),
]

_PY["api-client", "hard-coded-secret"] = [
    (_c('''
        import requests

        API_KEY = "{{key}}"


        def {{fn}}({{param}}):
            resp = requests.get(
                "{{url}}",
                params={"{{param}}": {{param}}},
                headers={"Authorization": f"Bearer {API_KEY}"},
                timeout=10,
            )
            resp.raise_for_status()
            return resp.json()
    '''), _c('''
        import os

        import requests

        API_KEY = os.environ["{{env}}"]


        def {{fn}}({{param}}):
            resp = requests.get(
                "{{url}}",
                params={"{{param}}": {{param}}},
                headers={"Authorization": f"Bearer {API_KEY}"},
                timeout=10,
            )
            resp.raise_for_status()
            return resp.json()
    ''')),
]

_PY["db-connection", "hard-coded-secret"] = [
    (_c('''
        import psycopg2


        def {{fn}}():
            return psycopg2.connect(
                host="{{host}}",
                dbname="{{dbname}}",
                user="{{user}}",
                password="{{pw}}",
            )
    '''), _c('''
        import os

        import psycopg2


        def {{fn}}():
            return psycopg2.connect(
                host="{{host}}",
                dbname="{{dbname}}",
                user="{{user}}",
                password=os.environ["{{env}}"],
            )
    ''')),
]

_PY["file-permissions", "world-writable"] = [
    (_c('''
        import os

        PATH = "{{path}}"


        def {{fn}}(data):
            os.makedirs(os.path.dirname(PATH), exist_ok=True)
            with open(PATH, "w") as fh:
                fh.write(data)
            os.chmod(PATH, 0o777)
    '''), _c('''
        import os

        PATH = "{{path}}"


        def {{fn}}(data):
            os.makedirs(os.path.dirname(PATH), exist_ok=True)
            with open(PATH, "w") as fh:
                fh.write(data)
            os.chmod(PATH, {{mode}})
    ''')),
    (_c('''
        import os
        from pathlib import Path


        def {{fn}}(data, path="{{path}}"):
            target = Path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(data)
            os.chmod(target, 0o666)
    '''), _c('''
        import os
        from pathlib import Path


        def {{fn}}(data, path="{{path}}"):
            target = Path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(data)
            os.chmod(target, {{mode}})
    ''')),
]

_PY["session-deserialization", "unsafe-deserialization"] = [
    (_c('''
        import base64
        import pickle


        def {{fn}}(cookie_value):
            return pickle.loads(base64.b64decode(cookie_value))
    '''), _c('''
        import base64
        import json


        def {{fn}}(cookie_value):
            return json.loads(base64.b64decode(cookie_value).decode("utf-8"))
    ''')),
    (_c('''
        import base64
        import pickle

        from flask import request


        def {{fn}}():
            raw = request.cookies.get("{{cookie}}")
            if not raw:
                return {}
            return pickle.loads(base64.urlsafe_b64decode(raw))
    '''), _c('''
        import base64
        import json

        from flask import request


        def {{fn}}():
            raw = request.cookies.get("{{cookie}}")
            if not raw:
                return {}
            return json.loads(base64.urlsafe_b64decode(raw).decode("utf-8"))
    ''')),
]

_PY["config-loading", "unsafe-deserialization"] = [
    (_c('''
        import yaml


        def {{fn}}(path="{{path}}"):
            with open(path) as fh:
                return yaml.load(fh, Loader=yaml.Loader)
    '''), _c('''
        import yaml


        def {{fn}}(path="{{path}}"):
            with open(path) as fh:
                return yaml.safe_load(fh)
    ''')),
    (_c('''
        from pathlib import Path

        import yaml


        def {{fn}}(path="{{path}}"):
            data = yaml.load(Path(path).read_text(), Loader=yaml.FullLoader)
            return data or {}
    '''), _c('''
        from pathlib import Path

        import yaml


        def {{fn}}(path="{{path}}"):
            data = yaml.safe_load(Path(path).read_text())
            return data or {}
    ''')),
]

_PY["password-storage", "weak-hash"] = [
    (_c('''
        import hashlib


        def {{fn}}(password):
            return hashlib.md5(password.encode("utf-8")).hexdigest()


        def {{verify}}(password, stored):
            return {{fn}}(password) == stored
    '''), _c('''
        import hashlib
        import hmac
        import os


        def {{fn}}(password):
            salt = os.urandom(16)
            digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=2**14, r=8, p=1)
            return salt.hex() + ":" + digest.hex()


        def {{verify}}(password, stored):
            salt_hex, digest_hex = stored.split(":")
            digest = hashlib.scrypt(password.encode("utf-8"), salt=bytes.fromhex(salt_hex), n=2**14, r=8, p=1)
            return hmac.compare_digest(digest.hex(), digest_hex)
    ''')),
    (_c('''
        import hashlib

        SALT = "{{salt}}"


        def {{fn}}(password):
            return hashlib.sha1((SALT + password).encode("utf-8")).hexdigest()


        def {{verify}}(password, stored):
            return {{fn}}(password) == stored
    '''), _c('''
        import hashlib
        import hmac
        import os

        ITERATIONS = 600_000


        def {{fn}}(password):
            salt = os.urandom(16)
            digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, ITERATIONS)
            return f"{salt.hex()}${digest.hex()}"


        def {{verify}}(password, stored):
            salt_hex, digest_hex = stored.split("$")
            digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), bytes.fromhex(salt_hex), ITERATIONS)
            return hmac.compare_digest(digest.hex(), digest_hex)
    ''')),
]

_PY["html-rendering", "xss"] = [
    (_c('''
        from flask import Flask, request

        app = Flask(__name__)


        @app.route("/{{route}}")
        def {{fn}}():
            {{var}} = request.args.get("{{param}}", "")
            return f"<h1>{{label}}</h1><p>{{{var}}}</p>"
    '''), _c('''
        from flask import Flask, request
        from markupsafe import escape

        app = Flask(__name__)


        @app.route("/{{route}}")
        def {{fn}}():
            {{var}} = request.args.get("{{param}}", "")
            return f"<h1>{{label}}</h1><p>{escape({{var}})}</p>"
    ''')),
    (_c('''
        from flask import Flask, request

        app = Flask(__name__)


        @app.route("/{{route}}")
        def {{fn}}():
            {{var}} = request.args.get("{{param}}", "")
            return "<h1>{{label}}</h1><p>" + {{var}} + "</p>"
    '''), _c('''
        import html

        from flask import Flask, request

        app = Flask(__name__)


        @app.route("/{{route}}")
        def {{fn}}():
            {{var}} = request.args.get("{{param}}", "")
            return "<h1>{{label}}</h1><p>" + html.escape({{var}}) + "</p>"
    ''')),
]

_PY["url-fetch", "tls-verification-disabled"] = [
    (_c('''
        import requests


        def {{fn}}(url):
            resp = requests.get(url, timeout=10, verify=False)
            resp.raise_for_status()
            return resp.json()
    '''), _c('''
        import requests


        def {{fn}}(url):
            resp = requests.get(url, timeout=10)
            resp.raise_for_status()
            return resp.json()
    ''')),
    (_c('''
        import json
        import ssl
        import urllib.request


        def {{fn}}(url):
            ctx = ssl._create_unverified_context()
            with urllib.request.urlopen(url, context=ctx, timeout=10) as resp:
                return json.load(resp)
    '''), _c('''
        import json
        import ssl
        import urllib.request


        def {{fn}}(url):
            ctx = ssl.create_default_context()
            with urllib.request.urlopen(url, context=ctx, timeout=10) as resp:
                return json.load(resp)
    ''')),
    (_c('''
        import json
        import ssl
        import urllib.request


        def {{fn}}(url):
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            with urllib.request.urlopen(url, context=ctx, timeout=10) as resp:
                return json.loads(resp.read().decode("utf-8"))
    '''), _c('''
        import json
        import ssl
        import urllib.request


        def {{fn}}(url):
            ctx = ssl.create_default_context()
            with urllib.request.urlopen(url, context=ctx, timeout=10) as resp:
                return json.loads(resp.read().decode("utf-8"))
    ''')),
]

_PY["temp-file", "insecure-temp-file"] = [
    (_c('''
        import tempfile


        def {{fn}}(data: bytes) -> str:
            path = tempfile.mktemp(suffix="{{suffix}}")
            with open(path, "wb") as fh:
                fh.write(data)
            return path
    '''), _c('''
        import os
        import tempfile


        def {{fn}}(data: bytes) -> str:
            fd, path = tempfile.mkstemp(suffix="{{suffix}}")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            return path
    ''')),
    (_c('''
        import os


        def {{fn}}(data: bytes) -> str:
            path = os.path.join("/tmp", "{{fn}}{{suffix}}")
            with open(path, "wb") as fh:
                fh.write(data)
            return path
    '''), _c('''
        import tempfile


        def {{fn}}(data: bytes) -> str:
            with tempfile.NamedTemporaryFile(suffix="{{suffix}}", delete=False) as fh:
                fh.write(data)
                return fh.name
    ''')),
]

_PY_CALC = _c('''
    import ast
    import operator

    _OPS = {
        ast.Add: operator.add,
        ast.Sub: operator.sub,
        ast.Mult: operator.mul,
        ast.Div: operator.truediv,
        ast.USub: operator.neg,
        ast.UAdd: operator.pos,
    }


    def {{fn}}(expression):
        def walk(node):
            if isinstance(node, ast.Expression):
                return walk(node.body)
            if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
                return node.value
            if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
                return _OPS[type(node.op)](walk(node.left), walk(node.right))
            if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
                return _OPS[type(node.op)](walk(node.operand))
            raise ValueError(f"unsupported expression: {expression!r}")

        return walk(ast.parse(expression, mode="eval"))
''')
_PY["expression-eval", "eval-injection"] = [
    (_c('''
        def {{fn}}(expression):
            return eval(expression)
    '''), _PY_CALC),
    (_c('''
        def {{fn}}(expression):
            return eval(expression, {"__builtins__": {}}, {})
    '''), _PY_CALC),
]

_PY["config-parsing", "eval-injection"] = [
    (_c('''
        def {{fn}}(raw):
            return eval(raw.strip())
    '''), _c('''
        import ast


        def {{fn}}(raw):
            return ast.literal_eval(raw.strip())
    ''')),
]

_PY["token-generation", "weak-randomness"] = [
    (_c('''
        import random
        import string

        ALPHABET = string.ascii_letters + string.digits


        def {{fn}}(length={{len}}):
            return "".join(random.choice(ALPHABET) for _ in range(length))
    '''), _c('''
        import secrets
        import string

        ALPHABET = string.ascii_letters + string.digits


        def {{fn}}(length={{len}}):
            return "".join(secrets.choice(ALPHABET) for _ in range(length))
    ''')),
    (_c('''
        import random


        def {{fn}}():
            return "%0{{len}}x" % random.getrandbits({{len}} * 4)
    '''), _c('''
        import secrets


        def {{fn}}():
            return secrets.token_hex({{half}})
    ''')),
]

_PY["archive-extraction", "zip-slip"] = [
    (_c('''
        import os
        import zipfile


        def {{fn}}(archive_path, dest_dir="{{dest}}"):
            with zipfile.ZipFile(archive_path) as zf:
                for info in zf.infolist():
                    target = os.path.join(dest_dir, info.filename)
                    if info.is_dir():
                        os.makedirs(target, exist_ok=True)
                        continue
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    with zf.open(info) as src, open(target, "wb") as dst:
                        dst.write(src.read())
    '''), _c('''
        import os
        import zipfile


        def {{fn}}(archive_path, dest_dir="{{dest}}"):
            root = os.path.realpath(dest_dir)
            with zipfile.ZipFile(archive_path) as zf:
                for info in zf.infolist():
                    target = os.path.realpath(os.path.join(root, info.filename))
                    if os.path.commonpath([root, target]) != root:
                        raise ValueError(f"bad member name: {info.filename}")
                    if info.is_dir():
                        os.makedirs(target, exist_ok=True)
                        continue
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    with zf.open(info) as src, open(target, "wb") as dst:
                        dst.write(src.read())
    ''')),
]
