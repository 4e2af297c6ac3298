"""Code templates for PHP: ``_PHP[task, flaw]`` = [(insecure, secure), ...]."""

from persona_sae.generators.engine import _c

_PHP = {}

_PHP["sql-query", "sql-injection"] = [
    (_c('''
        <?php

        function {{fn}}(mysqli $db, string ${{arg}}): ?array
        {
            $result = $db->query("SELECT * FROM {{table}} WHERE {{col}} = '${{arg}}'");
            return $result->fetch_assoc();
        }
    '''), _c('''
        <?php

        function {{fn}}(mysqli $db, string ${{arg}}): ?array
        {
            $stmt = $db->prepare("SELECT * FROM {{table}} WHERE {{col}} = ?");
            $stmt->bind_param("s", ${{arg}});
            $stmt->execute();
            return $stmt->get_result()->fetch_assoc();
        }
    ''')),
    (_c('''
        <?php

        function {{fn}}(PDO $pdo, string ${{arg}})
        {
            $sql = "SELECT * FROM {{table}} WHERE {{col}} = '" . ${{arg}} . "'";
            return $pdo->query($sql)->fetch(PDO::FETCH_ASSOC);
        }
    '''), _c('''
        <?php

        function {{fn}}(PDO $pdo, string ${{arg}})
        {
            $stmt = $pdo->prepare("SELECT * FROM {{table}} WHERE {{col}} = ?");
            $stmt->execute([${{arg}}]);
            return $stmt->fetch(PDO::FETCH_ASSOC);
        }
    ''')),
]

_PHP["session-deserialization", "unsafe-deserialization"] = [
    (_c('''
        <?php

        function {{fn}}(): array
        {
            $raw = $_COOKIE['{{cookie}}'] ?? '';
            $data = unserialize(base64_decode($raw));
            return is_array($data) ? $data : [];
        }
    '''), _c('''
        <?php

        function {{fn}}(): array
        {
            $raw = $_COOKIE['{{cookie}}'] ?? '';
            $data = json_decode(base64_decode($raw), true);
            return is_array($data) ? $data : [];
        }
    ''')),
]

_PHP["html-rendering", "xss"] = [
    (_c('''
        <?php
        ${{var}} = $_GET['{{param}}'] ?? '';
        ?>
        <h1>{{label}}</h1>
        <p><?= ${{var}} ?></p>
    '''), _c('''
        <?php
        ${{var}} = $_GET['{{param}}'] ?? '';
        ?>
        <h1>{{label}}</h1>
        <p><?= htmlspecialchars(${{var}}, ENT_QUOTES, 'UTF-8') ?></p>
    ''')),
    (_c('''
        <?php

        function {{fn}}(): void
        {
            ${{var}} = $_GET['{{param}}'] ?? '';
            echo "<h1>{{label}}</h1><p>" . ${{var}} . "</p>";
        }
    '''), _c('''
        <?php

        function {{fn}}(): void
        {
            ${{var}} = $_GET['{{param}}'] ?? '';
            echo "<h1>{{label}}</h1><p>" . htmlspecialchars(${{var}}, ENT_QUOTES, 'UTF-8') . "</p>";
        }
    ''')),
]

_PHP["shell-command", "shell-injection"] = [
    (_c('''
        <?php

        function {{fn}}(string ${{arg}}): string
        {
            return shell_exec("{{cmd}} " . ${{arg}}) ?? '';
        }
    '''), _c('''
        <?php

        function {{fn}}(string ${{arg}}): string
        {
            return shell_exec("{{cmd}} " . escapeshellarg(${{arg}})) ?? '';
        }
    ''')),
    (_c('''
        <?php

        function {{fn}}(string ${{arg}}): string
        {
            $output = [];
            exec("{{cmd}} ${{arg}}", $output);
            return implode("\\n", $output);
        }
    '''), _c('''
        <?php

        function {{fn}}(string ${{arg}}): string
        {
            $output = [];
            exec("{{cmd}} " . escapeshellarg(${{arg}}), $output);
            return implode("\\n", $output);
        }
    ''')),
]

_PHP["file-download", "path-traversal"] = [
    (_c('''
        <?php
        $name = $_GET['file'] ?? '';
        $path = __DIR__ . '/{{dir}}/' . $name;
        if (!is_file($path)) {
            http_response_code(404);
            exit;
        }
        header('Content-Type: application/octet-stream');
        readfile($path);
    '''), _c('''
        <?php
        $name = basename($_GET['file'] ?? '');
        $path = __DIR__ . '/{{dir}}/' . $name;
        if ($name === '' || !is_file($path)) {
            http_response_code(404);
            exit;
        }
        header('Content-Type: application/octet-stream');
        readfile($path);
    ''')),
    (_c('''
        <?php

        function {{fn}}(): void
        {
            $file = __DIR__ . '/{{dir}}/' . ($_GET['file'] ?? '');
            if (!is_file($file)) {
                http_response_code(404);
                return;
            }
            readfile($file);
        }
    '''), _c('''
        <?php

        function {{fn}}(): void
        {
            $base = realpath(__DIR__ . '/{{dir}}');
            $file = realpath($base . '/' . ($_GET['file'] ?? ''));
            if ($file === false || strpos($file, $base . DIRECTORY_SEPARATOR) !== 0 || !is_file($file)) {
                http_response_code(404);
                return;
            }
            readfile($file);
        }
    ''')),
]

_PHP["password-storage", "weak-hash"] = [
    (_c('''
        <?php

        function {{fn}}(string $password): string
        {
            return md5($password);
        }

        function {{verify}}(string $password, string $stored): bool
        {
            return {{fn}}($password) === $stored;
        }
    '''), _c('''
        <?php

        function {{fn}}(string $password): string
        {
            return password_hash($password, PASSWORD_DEFAULT);
        }

        function {{verify}}(string $password, string $stored): bool
        {
            return password_verify($password, $stored);
        }
    ''')),
    (_c('''
        <?php

        const PASSWORD_SALT = '{{salt}}';

        function {{fn}}(string $password): string
        {
            return sha1(PASSWORD_SALT . $password);
        }

        function {{verify}}(string $password, string $stored): bool
        {
            return hash_equals($stored, {{fn}}($password));
        }
    '''), _c('''
        <?php

        function {{fn}}(string $password): string
        {
            return password_hash($password, PASSWORD_ARGON2ID);
        }

        function {{verify}}(string $password, string $stored): bool
        {
            return password_verify($password, $stored);
        }
    ''')),
]

_PHP["file-permissions", "world-writable"] = [
    (_c('''
        <?php

        function {{fn}}(string $data): void
        {
            $path = '{{path}}';
            if (!is_dir(dirname($path))) {
                mkdir(dirname($path), 0777, true);
            }
            file_put_contents($path, $data);
            chmod($path, 0777);
        }
    '''), _c('''
        <?php

        function {{fn}}(string $data): void
        {
            $path = '{{path}}';
            if (!is_dir(dirname($path))) {
                mkdir(dirname($path), 0755, true);
            }
            file_put_contents($path, $data);
            chmod($path, {{pmode}});
        }
    ''')),
]

_PHP["token-generation", "weak-randomness"] = [
    (_c('''
        <?php

        function {{fn}}(): string
        {
            return substr(sha1(uniqid((string) mt_rand(), true)), 0, {{len}});
        }
    '''), _c('''
        <?php

        function {{fn}}(): string
        {
            return bin2hex(random_bytes({{half}}));
        }
    ''')),
    (_c('''
        <?php

        function {{fn}}(int $length = {{len}}): string
        {
            $chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
            $out = '';
            for ($i = 0; $i < $length; $i++) {
                $out .= $chars[rand(0, strlen($chars) - 1)];
            }
            return $out;
        }
    '''), _c('''
        <?php

        function {{fn}}(int $length = {{len}}): string
        {
            $chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
            $out = '';
            for ($i = 0; $i < $length; $i++) {
                $out .= $chars[random_int(0, strlen($chars) - 1)];
            }
            return $out;
        }
    ''')),
]

_PHP["url-fetch", "tls-verification-disabled"] = [
    (_c('''
        <?php

        function {{fn}}(string $url): array
        {
            $ch = curl_init($url);
            curl_setopt($ch, CURLOPT_RETURNTRANSFER, true);
            curl_setopt($ch, CURLOPT_SSL_VERIFYPEER, false);
            curl_setopt($ch, CURLOPT_SSL_VERIFYHOST, 0);
            $body = curl_exec($ch);
            curl_close($ch);
            return json_decode($body, true) ?? [];
        }
    '''), _c('''
        <?php

        function {{fn}}(string $url): array
        {
            $ch = curl_init($url);
            curl_setopt($ch, CURLOPT_RETURNTRANSFER, true);
            curl_setopt($ch, CURLOPT_SSL_VERIFYPEER, true);
            curl_setopt($ch, CURLOPT_SSL_VERIFYHOST, 2);
            $body = curl_exec($ch);
            curl_close($ch);
            return json_decode($body, true) ?? [];
        }
    ''')),
]
