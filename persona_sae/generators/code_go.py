"""Code templates for Go: ``_GO[task, flaw]`` = [(insecure, secure), ...]."""

from persona_sae.generators.engine import _go

_GO = {}

_GO["sql-query", "sql-injection"] = [
    (_go('''
        package store

        import (
            "database/sql"
            "fmt"
        )

        func {{fn}}(db *sql.DB, {{arg}} string) (*sql.Rows, error) {
            query := fmt.Sprintf("SELECT * FROM {{table}} WHERE {{col}} = '%s'", {{arg}})
            return db.Query(query)
        }
    '''), _go('''
        package store

        import (
            "database/sql"
        )

        func {{fn}}(db *sql.DB, {{arg}} string) (*sql.Rows, error) {
            return db.Query("SELECT * FROM {{table}} WHERE {{col}} = ?", {{arg}})
        }
    ''')),
]

_GO["shell-command", "shell-injection"] = [
    (_go('''
        package tools

        import "os/exec"

        func {{fn}}({{arg}} string) (string, error) {
            out, err := exec.Command("sh", "-c", "{{cmd}} "+{{arg}}).Output()
            return string(out), err
        }
    '''), _go('''
        package tools

        import "os/exec"

        func {{fn}}({{arg}} string) (string, error) {
            out, err := exec.Command("{{bin}}", {{head}}{{arg}}).Output()
            return string(out), err
        }
    ''')),
]

_GO["file-download", "path-traversal"] = [
    (_go('''
        package files

        import (
            "net/http"
            "path/filepath"
        )

        const baseDir = "{{dir}}"

        func {{fn}}(w http.ResponseWriter, r *http.Request) {
            name := r.URL.Query().Get("file")
            http.ServeFile(w, r, filepath.Join(baseDir, name))
        }
    '''), _go('''
        package files

        import (
            "net/http"
            "path/filepath"
        )

        const baseDir = "{{dir}}"

        func {{fn}}(w http.ResponseWriter, r *http.Request) {
            name := r.URL.Query().Get("file")
            if !filepath.IsLocal(name) {
                http.NotFound(w, r)
                return
            }
            http.ServeFile(w, r, filepath.Join(baseDir, name))
        }
    ''')),
]

_GO["token-generation", "weak-randomness"] = [
    (_go('''
        package tokens

        import "math/rand"

        const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

        func {{fn}}() string {
            b := make([]byte, {{len}})
            for i := range b {
                b[i] = letters[rand.Intn(len(letters))]
            }
            return string(b)
        }
    '''), _go('''
        package tokens

        import (
            "crypto/rand"
            "encoding/hex"
        )

        func {{fn}}() (string, error) {
            b := make([]byte, {{half}})
            if _, err := rand.Read(b); err != nil {
                return "", err
            }
            return hex.EncodeToString(b), nil
        }
    ''')),
]

_GO_API = '''
    func {{fn}}({{param}} string) (map[string]any, error) {
        q := url.Values{}
        q.Set("{{param}}", {{param}})
        req, err := http.NewRequest("GET", "{{url}}?"+q.Encode(), nil)
        if err != nil {
            return nil, err
        }
        req.Header.Set("Authorization", "Bearer "+apiKey)
        resp, err := http.DefaultClient.Do(req)
        if err != nil {
            return nil, err
        }
        defer resp.Body.Close()
        var out map[string]any
        err = json.NewDecoder(resp.Body).Decode(&out)
        return out, err
    }
'''
_GO["api-client", "hard-coded-secret"] = [
    (_go('''
        package client

        import (
            "encoding/json"
            "net/http"
            "net/url"
        )

        const apiKey = "{{key}}"
    ''') + "\n\n" + _go(_GO_API), _go('''
        package client

        import (
            "encoding/json"
            "net/http"
            "net/url"
            "os"
        )

        var apiKey = os.Getenv("{{env}}")
    ''') + "\n\n" + _go(_GO_API)),
]
