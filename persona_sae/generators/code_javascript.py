"""Code templates for JavaScript (Node unless the task is browser-side):
``_JS[task, flaw]`` = [(insecure, secure), ...].
"""

from persona_sae.generators.engine import _c

_JS = {}

_JS["sql-query", "sql-injection"] = [
    (_c('''
        const mysql = require("mysql2/promise");

        const pool = mysql.createPool({ uri: process.env.DATABASE_URL });

        async function {{fn}}({{arg}}) {
          const [rows] = await pool.query(`SELECT * FROM {{table}} WHERE {{col}} = '${{{arg}}}'`);
          return rows[0];
        }

        module.exports = { {{fn}} };
    '''), _c('''
        const mysql = require("mysql2/promise");

        const pool = mysql.createPool({ uri: process.env.DATABASE_URL });

        async function {{fn}}({{arg}}) {
          const [rows] = await pool.execute("SELECT * FROM {{table}} WHERE {{col}} = ?", [{{arg}}]);
          return rows[0];
        }

        module.exports = { {{fn}} };
    ''')),
    (_c('''
        const { Pool } = require("pg");

        const pool = new Pool();

        async function {{fn}}({{arg}}) {
          const result = await pool.query("SELECT * FROM {{table}} WHERE {{col}} = '" + {{arg}} + "'");
          return result.rows[0];
        }

        module.exports = { {{fn}} };
    '''), _c('''
        const { Pool } = require("pg");

        const pool = new Pool();

        async function {{fn}}({{arg}}) {
          const result = await pool.query("SELECT * FROM {{table}} WHERE {{col}} = $1", [{{arg}}]);
          return result.rows[0];
        }

        module.exports = { {{fn}} };
    ''')),
]

_JS["file-download", "path-traversal"] = [
    (_c('''
        const express = require("express");
        const path = require("path");

        const app = express();
        const BASE_DIR = path.join(__dirname, "{{dir}}");

        app.get("/{{route}}", function {{fn}}(req, res) {
          res.sendFile(path.join(BASE_DIR, String(req.query.file)));
        });

        app.listen(3000);
    '''), _c('''
        const express = require("express");
        const path = require("path");

        const app = express();
        const BASE_DIR = path.join(__dirname, "{{dir}}");

        app.get("/{{route}}", function {{fn}}(req, res) {
          const target = path.resolve(BASE_DIR, String(req.query.file));
          if (!target.startsWith(BASE_DIR + path.sep)) {
            return res.sendStatus(404);
          }
          res.sendFile(target);
        });

        app.listen(3000);
    ''')),
    (_c('''
        const fs = require("fs");
        const http = require("http");
        const path = require("path");

        const BASE_DIR = path.join(__dirname, "{{dir}}");

        http
          .createServer(function {{fn}}(req, res) {
            const name = new URL(req.url, "http://localhost").searchParams.get("file") || "";
            const stream = fs.createReadStream(path.join(BASE_DIR, name));
            stream.on("error", () => {
              res.statusCode = 404;
              res.end();
            });
            stream.pipe(res);
          })
          .listen(8080);
    '''), _c('''
        const fs = require("fs");
        const http = require("http");
        const path = require("path");

        const BASE_DIR = path.join(__dirname, "{{dir}}");

        http
          .createServer(function {{fn}}(req, res) {
            const name = new URL(req.url, "http://localhost").searchParams.get("file") || "";
            const target = path.resolve(BASE_DIR, name);
            if (!target.startsWith(BASE_DIR + path.sep)) {
              res.statusCode = 404;
              return res.end();
            }
            const stream = fs.createReadStream(target);
            stream.on("error", () => {
              res.statusCode = 404;
              res.end();
            });
            stream.pipe(res);
          })
          .listen(8080);
    ''')),
]

_JS["shell-command", "shell-injection"] = [
    (_c('''
        const { exec } = require("child_process");

        function {{fn}}({{arg}}) {
          return new Promise((resolve, reject) => {
            exec(`{{cmd}} ${{{arg}}}`, (err, stdout) => (err ? reject(err) : resolve(stdout)));
          });
        }

        module.exports = { {{fn}} };
    '''), _c('''
        const { execFile } = require("child_process");

        function {{fn}}({{arg}}) {
          return new Promise((resolve, reject) => {
            execFile("{{bin}}", [{{head}}{{arg}}], (err, stdout) => (err ? reject(err) : resolve(stdout)));
          });
        }

        module.exports = { {{fn}} };
    ''')),
    (_c('''
        const { execSync } = require("child_process");

        function {{fn}}({{arg}}) {
          return execSync("{{cmd}} " + {{arg}}).toString();
        }

        module.exports = { {{fn}} };
    '''), _c('''
        const { execFileSync } = require("child_process");

        function {{fn}}({{arg}}) {
          return execFileSync("{{bin}}", [{{head}}{{arg}}]).toString();
        }

        module.exports = { {{fn}} };
    ''')),
]

_JS_API = '''
    async function {{fn}}({{param}}) {
      const url = new URL("{{url}}");
      url.searchParams.set("{{param}}", {{param}});
      const res = await fetch(url, { headers: { Authorization: `Bearer ${API_KEY}` } });
      if (!res.ok) throw new Error(`request failed with status ${res.status}`);
      return res.json();
    }

    module.exports = { {{fn}} };
'''
_JS["api-client", "hard-coded-secret"] = [
    ('const API_KEY = "{{key}}";\n\n' + _c(_JS_API), "const API_KEY = process.env.{{env}};\n\n" + _c(_JS_API)),
]

_JS["db-connection", "hard-coded-secret"] = [
    (_c('''
        const { Pool } = require("pg");

        function {{fn}}() {
          return new Pool({
            host: "{{host}}",
            database: "{{dbname}}",
            user: "{{user}}",
            password: "{{pw}}",
          });
        }

        module.exports = { {{fn}} };
    '''), _c('''
        const { Pool } = require("pg");

        function {{fn}}() {
          return new Pool({
            host: "{{host}}",
            database: "{{dbname}}",
            user: "{{user}}",
            password: process.env.{{env}},
          });
        }

        module.exports = { {{fn}} };
    ''')),
]

_JS["dom-rendering", "xss"] = [
    (_c('''
        function {{fn}}({{var}}) {
          const el = document.getElementById("{{var}}-output");
          el.innerHTML = "<h2>{{label}}</h2><p>" + {{var}} + "</p>";
        }

        {{fn}}(new URLSearchParams(location.search).get("{{param}}") || "");
    '''), _c('''
        function {{fn}}({{var}}) {
          const el = document.getElementById("{{var}}-output");
          const heading = document.createElement("h2");
          heading.textContent = "{{label}}";
          const body = document.createElement("p");
          body.textContent = {{var}};
          el.replaceChildren(heading, body);
        }

        {{fn}}(new URLSearchParams(location.search).get("{{param}}") || "");
    ''')),
    (_c('''
        function {{fn}}({{var}}) {
          document
            .getElementById("{{var}}-output")
            .insertAdjacentHTML("beforeend", `<section><h2>{{label}}</h2><p>${{{var}}}</p></section>`);
        }

        {{fn}}(new URLSearchParams(window.location.search).get("{{param}}") || "");
    '''), _c('''
        function {{fn}}({{var}}) {
          const section = document.createElement("section");
          const heading = document.createElement("h2");
          heading.textContent = "{{label}}";
          const body = document.createElement("p");
          body.textContent = {{var}};
          section.append(heading, body);
          document.getElementById("{{var}}-output").append(section);
        }

        {{fn}}(new URLSearchParams(window.location.search).get("{{param}}") || "");
    ''')),
]

_JS["html-rendering", "xss"] = [
    (_c('''
        const express = require("express");

        const app = express();

        app.get("/{{route}}", function {{fn}}(req, res) {
          const {{var}} = req.query.{{param}} || "";
          res.send(`<h1>{{label}}</h1><p>${{{var}}}</p>`);
        });

        app.listen(3000);
    '''), _c('''
        const express = require("express");

        const app = express();

        const escapeHtml = (s) =>
          String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

        app.get("/{{route}}", function {{fn}}(req, res) {
          const {{var}} = req.query.{{param}} || "";
          res.send(`<h1>{{label}}</h1><p>${escapeHtml({{var}})}</p>`);
        });

        app.listen(3000);
    ''')),
]

_JS["url-fetch", "tls-verification-disabled"] = [
    (_c('''
        const https = require("https");

        function {{fn}}(url) {
          return new Promise((resolve, reject) => {
            https
              .get(url, { rejectUnauthorized: false }, (res) => {
                let body = "";
                res.on("data", (chunk) => (body += chunk));
                res.on("end", () => resolve(JSON.parse(body)));
              })
              .on("error", reject);
          });
        }

        module.exports = { {{fn}} };
    '''), _c('''
        const https = require("https");

        function {{fn}}(url) {
          return new Promise((resolve, reject) => {
            https
              .get(url, (res) => {
                let body = "";
                res.on("data", (chunk) => (body += chunk));
                res.on("end", () => resolve(JSON.parse(body)));
              })
              .on("error", reject);
          });
        }

        module.exports = { {{fn}} };
    ''')),
    (_c('''
        const https = require("https");
        const axios = require("axios");

        const agent = new https.Agent({ rejectUnauthorized: false });

        async function {{fn}}(url) {
          const res = await axios.get(url, { httpsAgent: agent, timeout: 10000 });
          return res.data;
        }

        module.exports = { {{fn}} };
    '''), _c('''
        const https = require("https");
        const axios = require("axios");

        const agent = new https.Agent({ keepAlive: true });

        async function {{fn}}(url) {
          const res = await axios.get(url, { httpsAgent: agent, timeout: 10000 });
          return res.data;
        }

        module.exports = { {{fn}} };
    ''')),
]

_JS["session-deserialization", "unsafe-deserialization"] = [
    (_c('''
        function {{fn}}(cookieValue) {
          const text = Buffer.from(cookieValue, "base64").toString("utf8");
          return eval("(" + text + ")");
        }

        module.exports = { {{fn}} };
    '''), _c('''
        function {{fn}}(cookieValue) {
          const text = Buffer.from(cookieValue, "base64").toString("utf8");
          return JSON.parse(text);
        }

        module.exports = { {{fn}} };
    ''')),
    (_c('''
        const serialize = require("node-serialize");

        function {{fn}}(req) {
          const raw = req.cookies["{{cookie}}"];
          if (!raw) return {};
          return serialize.unserialize(Buffer.from(raw, "base64").toString("utf8"));
        }

        module.exports = { {{fn}} };
    '''), _c('''
        function {{fn}}(req) {
          const raw = req.cookies["{{cookie}}"];
          if (!raw) return {};
          return JSON.parse(Buffer.from(raw, "base64").toString("utf8"));
        }

        module.exports = { {{fn}} };
    ''')),
]

_JS_CALC = _c('''
    function {{fn}}(expression) {
      const tokens = expression.match(/\\d+(?:\\.\\d+)?|[-+*/()]/g) || [];
      if (tokens.join("") !== expression.replace(/\\s+/g, "")) {
        throw new Error("unsupported expression");
      }
      let pos = 0;
      const peek = () => tokens[pos];
      const next = () => tokens[pos++];

      function factor() {
        const tok = next();
        if (tok === "-") return -factor();
        if (tok === "(") {
          const value = sum();
          if (next() !== ")") throw new Error("missing closing parenthesis");
          return value;
        }
        const num = Number(tok);
        if (Number.isNaN(num)) throw new Error("unexpected token");
        return num;
      }

      function product() {
        let value = factor();
        while (peek() === "*" || peek() === "/") {
          value = next() === "*" ? value * factor() : value / factor();
        }
        return value;
      }

      function sum() {
        let value = product();
        while (peek() === "+" || peek() === "-") {
          value = next() === "+" ? value + product() : value - product();
        }
        return value;
      }

      const result = sum();
      if (pos !== tokens.length) throw new Error("unexpected input");
      return result;
    }

    module.exports = { {{fn}} };
''')
_JS["expression-eval", "eval-injection"] = [
    (_c('''
        function {{fn}}(expression) {
          return eval(expression);
        }

        module.exports = { {{fn}} };
    '''), _JS_CALC),
    (_c('''
        function {{fn}}(expression) {
          return Function("return (" + expression + ")")();
        }

        module.exports = { {{fn}} };
    '''), _JS_CALC),
]

_JS["password-storage", "weak-hash"] = [
    (_c('''
        const crypto = require("crypto");

        function {{fn}}(password) {
          return crypto.createHash("md5").update(password).digest("hex");
        }

        function {{verify}}(password, stored) {
          return {{fn}}(password) === stored;
        }

        module.exports = { {{fn}}, {{verify}} };
    '''), _c('''
        const crypto = require("crypto");

        function {{fn}}(password) {
          const salt = crypto.randomBytes(16);
          const hash = crypto.scryptSync(password, salt, 64);
          return salt.toString("hex") + ":" + hash.toString("hex");
        }

        function {{verify}}(password, stored) {
          const [saltHex, hashHex] = stored.split(":");
          const hash = crypto.scryptSync(password, Buffer.from(saltHex, "hex"), 64);
          return crypto.timingSafeEqual(hash, Buffer.from(hashHex, "hex"));
        }

        module.exports = { {{fn}}, {{verify}} };
    ''')),
    (_c('''
        const crypto = require("crypto");

        const SALT = "{{salt}}";

        function {{fn}}(password) {
          return crypto.createHash("sha1").update(SALT + password).digest("hex");
        }

        function {{verify}}(password, stored) {
          return {{fn}}(password) === stored;
        }

        module.exports = { {{fn}}, {{verify}} };
    '''), _c('''
        const crypto = require("crypto");

        const ITERATIONS = 600000;

        function {{fn}}(password) {
          const salt = crypto.randomBytes(16);
          const hash = crypto.pbkdf2Sync(password, salt, ITERATIONS, 32, "sha256");
          return salt.toString("hex") + ":" + hash.toString("hex");
        }

        function {{verify}}(password, stored) {
          const [saltHex, hashHex] = stored.split(":");
          const hash = crypto.pbkdf2Sync(password, Buffer.from(saltHex, "hex"), ITERATIONS, 32, "sha256");
          return crypto.timingSafeEqual(hash, Buffer.from(hashHex, "hex"));
        }

        module.exports = { {{fn}}, {{verify}} };
    ''')),
]

_JS["token-generation", "weak-randomness"] = [
    (_c('''
        function {{fn}}() {
          let out = "";
          while (out.length < {{len}}) {
            out += Math.random().toString(36).slice(2);
          }
          return out.slice(0, {{len}});
        }

        module.exports = { {{fn}} };
    '''), _c('''
        const crypto = require("crypto");

        function {{fn}}() {
          return crypto.randomBytes({{half}}).toString("hex");
        }

        module.exports = { {{fn}} };
    ''')),
    (_c('''
        const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

        function {{fn}}(length = {{len}}) {
          let out = "";
          for (let i = 0; i < length; i++) {
            out += ALPHABET[Math.floor(Math.random() * ALPHABET.length)];
          }
          return out;
        }

        module.exports = { {{fn}} };
    '''), _c('''
        const crypto = require("crypto");

        const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

        function {{fn}}(length = {{len}}) {
          let out = "";
          for (let i = 0; i < length; i++) {
            out += ALPHABET[crypto.randomInt(ALPHABET.length)];
          }
          return out;
        }

        module.exports = { {{fn}} };
    ''')),
]

_JS["file-permissions", "world-writable"] = [
    (_c('''
        const fs = require("fs");
        const path = require("path");

        const FILE = "{{path}}";

        function {{fn}}(data) {
          fs.mkdirSync(path.dirname(FILE), { recursive: true });
          fs.writeFileSync(FILE, data);
          fs.chmodSync(FILE, 0o777);
        }

        module.exports = { {{fn}} };
    '''), _c('''
        const fs = require("fs");
        const path = require("path");

        const FILE = "{{path}}";

        function {{fn}}(data) {
          fs.mkdirSync(path.dirname(FILE), { recursive: true });
          fs.writeFileSync(FILE, data);
          fs.chmodSync(FILE, {{mode}});
        }

        module.exports = { {{fn}} };
    ''')),
]
