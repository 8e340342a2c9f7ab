package panther

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// DefaultTokenEnv is the environment variable LoadToken reads when given no name.
const DefaultTokenEnv = "PANTHER_API_TOKEN"

// LoadToken reads the Panther API token from a file or from an environment variable: the
// file when file is not empty (surrounding whitespace, such as the trailing newline of a
// mounted secret, is dropped), else the variable env (DefaultTokenEnv when env is empty).
// Errors name the file or the variable, never the token.
func LoadToken(env, file string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			// The *PathError names the file and the reason; it cannot contain the contents.
			return "", fmt.Errorf("panther token: %w", err)
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return "", fmt.Errorf("panther token: file %s is empty", file)
		}
		if strings.ContainsAny(tok, "\r\n") {
			return "", fmt.Errorf("panther token: file %s holds more than one line", file)
		}
		return tok, nil
	}
	if env == "" {
		env = DefaultTokenEnv
	}
	tok := strings.TrimSpace(os.Getenv(env))
	if tok == "" {
		return "", fmt.Errorf("panther token: environment variable %s is not set (or set a token file)", env)
	}
	return tok, nil
}

// errNoToken is returned by New for an empty Config.Token.
var errNoToken = errors.New("panther: no API token (Config.Token is empty)")
