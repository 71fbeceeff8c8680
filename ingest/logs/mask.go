package logs

import (
	"regexp"
	"strings"
)

// Built-in placeholders. A whole token (less surrounding punctuation) of a
// known kind becomes its named placeholder; a token that only starts with a
// word and then turns variable (blk_-42, uid=0, node-17) keeps the word and
// ends in <*>.
const (
	wildcard = "<*>"
	phNum    = "<NUM>"
	phIP     = "<IP>"
	phHex    = "<HEX>"
	phUUID   = "<UUID>"
	phPath   = "<PATH>"
	phURL    = "<URL>"
	phEmail  = "<EMAIL>"
	phDur    = "<DURATION>"
	phSize   = "<SIZE>"
	phHost   = "<HOST>"
)

// Mask is a user-defined variable pattern: every match of Regex in a
// message is replaced by <Name> before mining.
type Mask struct {
	Name  string
	Regex string
}

type userMask struct {
	re   *regexp.Regexp
	repl string
}

// token is one whitespace-separated token after masking. varOnly tokens are
// made only of placeholders and punctuation: they carry no constant text.
type token struct {
	text    string
	varOnly bool
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isLetter(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}
func isAlnum(c byte) bool { return isDigit(c) || isLetter(c) }
func isHex(c byte) bool {
	return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func isLead(c byte) bool {
	switch c {
	case '(', '[', '{', '"', '\'', '`':
		return true
	}
	return false
}

func isTrail(c byte) bool {
	switch c {
	case ')', ']', '}', '"', '\'', '`', ',', '.', ';', ':', '!', '?':
		return true
	}
	return false
}

// tokenize splits message on white space and masks every token, appending
// to dst. Units after a variable (10 ms, 3 MiB, 1.5 KB) join the variable.
func (m *Miner) tokenize(dst []token, message string) []token {
	start := len(dst)
	i := 0
	for i < len(message) {
		for i < len(message) && isSpace(message[i]) {
			i++
		}
		j := i
		for j < len(message) && !isSpace(message[j]) {
			j++
		}
		if j > i {
			t := m.maskToken(message[i:j])
			if n := len(dst); n > 0 && dst[n-1].varOnly && !t.varOnly && isUnitToken(t.text) {
				// "(1.5 KB)": the unit and its closing punctuation join the variable.
				prev := dst[n-1].text
				k := len(t.text)
				for k > 0 && isTrail(t.text[k-1]) {
					k--
				}
				if strings.HasSuffix(prev, phNum) {
					prev = prev[:len(prev)-len(phNum)] + unitPlaceholder(t.text[:k])
				}
				dst[n-1].text = prev + t.text[k:]
			} else {
				dst = append(dst, t)
			}
		}
		i = j
	}
	markDates(dst[start:])
	return dst
}

func unitPlaceholder(u string) string {
	switch u {
	case "ms", "s", "sec", "secs", "us", "µs", "ns", "min", "h":
		return phDur
	}
	return phSize
}

// isUnitToken reports whether tok (less trailing punctuation) is a unit of
// time or size written apart from its number.
func isUnitToken(tok string) bool {
	k := len(tok)
	for k > 0 && isTrail(tok[k-1]) {
		k--
	}
	switch tok[:k] {
	case "ms", "s", "sec", "secs", "us", "µs", "ns", "min", "h",
		"B", "KB", "kB", "MB", "GB", "TB", "PB", "KiB", "MiB", "GiB", "TiB", "PiB":
		return true
	}
	return false
}

// maskToken masks one token. It allocates only when it changes the token.
func (m *Miner) maskToken(tok string) token {
	// Fast path: plain words.
	special := false
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if isDigit(c) || c == '/' || c == '\\' || c == '@' || c == '<' || c == ':' || c == '.' || c == '=' || c == ')' || c == ']' || c == '"' || c == '\'' {
			special = true
			break
		}
	}
	if !special {
		return token{text: tok}
	}
	if m.userNames != nil && len(tok) > 2 && tok[0] == '<' && tok[len(tok)-1] == '>' {
		if _, ok := m.userNames[tok[1:len(tok)-1]]; ok {
			return token{text: tok, varOnly: true}
		}
	}
	a, b := 0, len(tok)
	for b > a && isTrail(tok[b-1]) {
		b--
	}
	if tok[0] == '[' && b > 0 && isIPv6(tok[:b]) {
		return token{text: phIP + tok[b:], varOnly: true}
	}
	b = len(tok)
	for a < b && isLead(tok[a]) {
		a++
	}
	for b > a && isTrail(tok[b-1]) {
		b--
	}
	core := tok[a:b]
	if core == "" {
		// An empty value: (), [], "", ''.
		for i := 0; i < len(tok); i++ {
			if !isLead(tok[i]) && !isTrail(tok[i]) || tok[i] == ',' || tok[i] == '.' || tok[i] == ';' || tok[i] == ':' || tok[i] == '!' || tok[i] == '?' {
				return token{text: tok}
			}
		}
		return token{text: tok, varOnly: true}
	}
	if ph := classify(core); ph != "" {
		return token{text: tok[:a] + ph + tok[b:], varOnly: true}
	}
	// key=value with a value of a known kind.
	if eq := strings.IndexByte(core, '='); eq > 0 && eq < len(core)-1 && isLetter(core[0]) {
		if ph := classify(core[eq+1:]); ph != "" {
			return token{text: tok[:a+eq+1] + ph + tok[b:]}
		}
	}
	// Find the first alphanumeric run holding a digit, or a user placeholder.
	start := -1
	for i := 0; i < len(core); {
		c := core[i]
		if c == '<' && m.userNames != nil {
			if k := strings.IndexByte(core[i:], '>'); k > 1 {
				if _, ok := m.userNames[core[i+1:i+k]]; ok {
					start = i
					break
				}
			}
		}
		if !isAlnum(c) {
			i++
			continue
		}
		j := i
		digit := false
		for j < len(core) && isAlnum(core[j]) {
			digit = digit || isDigit(core[j])
			j++
		}
		if digit {
			start = i
			if i > 0 && core[i-1] == '-' && (i == 1 || !isAlnum(core[i-2])) {
				start = i - 1 // a sign: blk_-42
			}
			break
		}
		i = j
	}
	if start < 0 {
		return token{text: tok}
	}
	hasWord := false
	for i := 0; i < start; i++ {
		if isLetter(core[i]) {
			hasWord = true
			break
		}
	}
	if !hasWord || isHostname(core) {
		return token{text: tok[:a] + wildcard + tok[b:], varOnly: true}
	}
	return token{text: tok[:a+start] + wildcard + tok[b:]}
}

// classify names the kind of a whole token core, or returns "".
func classify(s string) string {
	c := s[0]
	switch {
	case strings.Contains(s, "://"):
		return phURL
	case c == '/' && len(s) > 1, c == '~' && len(s) > 1 && s[1] == '/',
		len(s) > 2 && isLetter(c) && s[1] == ':' && s[2] == '\\', c == '\\' && len(s) > 1 && s[1] == '\\':
		return phPath
	}
	if isNumber(s) {
		return phNum
	}
	if isIPv4Port(s) || isIPv6(s) {
		return phIP
	}
	if isUUID(s) {
		return phUUID
	}
	if isHexWord(s) {
		return phHex
	}
	if k := numberPrefix(s); k > 0 {
		switch s[k:] {
		case "ns", "us", "µs", "ms", "s", "m", "h", "d", "min", "sec", "secs":
			return phDur
		case "B", "KB", "kB", "MB", "GB", "TB", "PB", "KiB", "MiB", "GiB", "TiB", "PiB", "K", "k", "M", "G":
			return phSize
		}
		if isGoDuration(s) {
			return phDur
		}
	}
	if at := strings.IndexByte(s, '@'); at > 0 && strings.Count(s, "@") == 1 {
		if dot := strings.LastIndexByte(s, '.'); dot > at+1 && dot < len(s)-1 && isLetter(s[len(s)-1]) {
			return phEmail
		}
	}
	if isHostPort(s) {
		return phIP
	}
	if isHostname(s) {
		return phHost
	}
	return ""
}

// numberPrefix returns the length of the leading decimal number of s
// (sign, digits, fraction), 0 if there is none.
func numberPrefix(s string) int {
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		i++
	}
	d := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	if i == d {
		return 0
	}
	if i+1 < len(s) && s[i] == '.' && isDigit(s[i+1]) {
		i++
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	return i
}

func isNumber(s string) bool {
	k := numberPrefix(s)
	if k == 0 {
		return false
	}
	if k < len(s) && (s[k] == 'e' || s[k] == 'E') {
		j := k + 1
		if j < len(s) && (s[j] == '-' || s[j] == '+') {
			j++
		}
		d := j
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		if j > d {
			k = j
		}
	}
	return k == len(s)
}

// isGoDuration matches 1h2m3.5s style durations.
func isGoDuration(s string) bool {
	i := 0
	for i < len(s) {
		k := numberPrefix(s[i:])
		if k == 0 || s[i] == '-' && i > 0 {
			return false
		}
		i += k
		j := i
		for j < len(s) && isLetter(s[j]) {
			j++
		}
		switch s[i:j] {
		case "h", "m", "s", "ms", "us", "µs", "ns":
		default:
			return false
		}
		i = j
	}
	return true
}

func isIPv4Port(s string) bool {
	i := 0
	for part := 0; part < 4; part++ {
		if part > 0 {
			if i >= len(s) || s[i] != '.' {
				return false
			}
			i++
		}
		d := i
		for i < len(s) && isDigit(s[i]) && i-d < 3 {
			i++
		}
		if i == d {
			return false
		}
	}
	if i < len(s) && (s[i] == ':' || s[i] == '/') {
		i++
		d := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if i == d {
			return false
		}
	}
	return i == len(s)
}

func isIPv6(s string) bool {
	if s == "" {
		return false
	}
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 || !isIPv6(s[1:end]) {
			return false
		}
		rest := s[end+1:]
		if rest == "" {
			return true
		}
		return len(rest) > 1 && rest[0] == ':' && isNumber(rest[1:])
	}
	colons, hex := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ':':
			colons++
		case isHex(c):
			hex++
		case c == '.' || c == '%':
			// embedded IPv4 or zone: accept loosely
		default:
			return false
		}
	}
	return (colons == 7 || strings.Contains(s, "::")) && (hex > 0 || s == "::") && !strings.Contains(s, ":::")
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !isHex(s[i]) {
				return false
			}
		}
	}
	return true
}

// isHexWord matches 0x-prefixed hex and long bare hex with a digit in it.
func isHexWord(s string) bool {
	if len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		for i := 2; i < len(s); i++ {
			if !isHex(s[i]) {
				return false
			}
		}
		return true
	}
	if len(s) < 8 {
		return false
	}
	digit := false
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
		digit = digit || isDigit(s[i])
	}
	return digit
}

// isHostPort matches host.name:port.
func isHostPort(s string) bool {
	c := strings.LastIndexByte(s, ':')
	if c <= 0 || c == len(s)-1 || !isNumber(s[c+1:]) || s[c+1] == '-' || s[c+1] == '+' {
		return false
	}
	host := s[:c]
	if !strings.Contains(host, ".") {
		return false
	}
	for i := 0; i < len(host); i++ {
		if ch := host[i]; !isAlnum(ch) && ch != '.' && ch != '-' && ch != '_' {
			return false
		}
	}
	return true
}

// isHostname matches dotted DNS names: names ending in a common top-level
// domain, and names with a digit and a lower-case top-level label
// (host-10-2.example.zz), as opposed to code identifiers (org.example.v2.Main)
// and file names (app.exe).
func isHostname(s string) bool {
	last := strings.LastIndexByte(s, '.')
	if last <= 0 || last == len(s)-1 {
		return false
	}
	digit := false
	for i := 0; i < last; i++ {
		c := s[i]
		if !isAlnum(c) && c != '.' && c != '-' && c != '_' {
			return false
		}
		digit = digit || isDigit(c)
	}
	tld := s[last+1:]
	if _, ok := commonTLDs[tld]; ok {
		return true
	}
	if !digit || len(tld) < 2 || len(tld) > 6 || strings.Count(s, ".") < 2 {
		return false
	}
	for i := 0; i < len(tld); i++ {
		if tld[i] < 'a' || tld[i] > 'z' {
			return false
		}
	}
	return true
}

var commonTLDs = map[string]struct{}{
	"com": {}, "net": {}, "org": {}, "edu": {}, "gov": {}, "mil": {}, "int": {}, "info": {}, "biz": {},
	"io": {}, "co": {}, "local": {}, "internal": {}, "lan": {}, "localdomain": {},
	"uk": {}, "de": {}, "fr": {}, "nl": {}, "it": {}, "es": {}, "pl": {}, "ru": {}, "cn": {}, "jp": {},
	"kr": {}, "tw": {}, "hk": {}, "in": {}, "au": {}, "br": {}, "ca": {}, "us": {}, "eu": {}, "ch": {},
	"se": {}, "no": {}, "fi": {}, "dk": {}, "at": {}, "be": {}, "cz": {}, "ro": {}, "ar": {}, "mx": {},
}

// Day and month names, masked when next to another variable (a date).
var dateWords = map[string]struct{}{
	"Mon": {}, "Tue": {}, "Wed": {}, "Thu": {}, "Fri": {}, "Sat": {}, "Sun": {},
	"Monday": {}, "Tuesday": {}, "Wednesday": {}, "Thursday": {}, "Friday": {}, "Saturday": {}, "Sunday": {},
	"Jan": {}, "Feb": {}, "Mar": {}, "Apr": {}, "May": {}, "Jun": {}, "Jul": {}, "Aug": {}, "Sep": {},
	"Oct": {}, "Nov": {}, "Dec": {}, "January": {}, "February": {}, "March": {}, "April": {}, "June": {},
	"July": {}, "August": {}, "September": {}, "October": {}, "November": {}, "December": {},
}

// markDates makes day and month names variable where they sit next to a
// variable token ("Fri Jun 17 07:07:00 2005").
func markDates(toks []token) {
	for pass := 0; pass < 2; pass++ {
		for i := range toks {
			if toks[i].varOnly {
				continue
			}
			if _, ok := dateWords[strings.TrimRight(toks[i].text, ",.")]; !ok {
				continue
			}
			if i > 0 && toks[i-1].varOnly || i+1 < len(toks) && toks[i+1].varOnly {
				toks[i].varOnly = true
			}
		}
	}
}
