#!/usr/bin/env python3
"""Seeds fuzz/corpus/<target>/ from the inputs the tests already use.

Run from the repository root: `python3 fuzz/seed.py`. Reads string
literals from tests/ and src/ (Rust "..." and r#"..."# strings), the TOML
configurations among them, tests/convert/*.cfg and packaging/percore.toml,
and writes each seed as a file named by its SHA-1 (as libFuzzer names
corpus files), so running it again adds nothing twice.
"""
import glob
import hashlib
import os
import re
import struct
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")

SOURCES = sorted(
    glob.glob(os.path.join(ROOT, "tests", "**", "*.rs"), recursive=True)
    + glob.glob(os.path.join(ROOT, "src", "**", "*.rs"), recursive=True)
    + glob.glob(os.path.join(ROOT, "benches", "*.rs"))
)

RAW = re.compile(r'(?s)\br(#+)"(.*?)"\1')
PLAIN = re.compile(r'(?s)(?<![r#\w])b?"((?:[^"\\]|\\.)*)"')


def unescape(s):
    """Rust string escapes -> bytes; a line-continuation backslash drops
    the newline and the indentation after it."""
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c != "\\":
            out += c.encode()
            i += 1
            continue
        n = s[i + 1] if i + 1 < len(s) else ""
        if n == "\n":
            i += 2
            while i < len(s) and s[i] in " \t":
                i += 1
            continue
        simple = {"r": b"\r", "n": b"\n", "t": b"\t", "0": b"\0", "\\": b"\\", '"': b'"', "'": b"'"}
        if n in simple:
            out += simple[n]
            i += 2
        elif n == "x":
            out.append(int(s[i + 2 : i + 4], 16))
            i += 4
        elif n == "u":
            end = s.index("}", i)
            out += chr(int(s[i + 3 : end], 16)).encode()
            i = end + 1
        else:
            out += b"\\"
            i += 1
    return bytes(out)


def literals():
    for path in SOURCES:
        text = open(path, encoding="utf-8", errors="replace").read()
        for m in RAW.finditer(text):
            yield m.group(2).encode()
        stripped = RAW.sub("", text)
        for m in PLAIN.finditer(stripped):
            try:
                yield unescape(m.group(1))
            except (ValueError, IndexError):
                pass


seeds = {}


def add(target, data):
    if not data or len(data) > 64 * 1024:
        return
    seeds.setdefault(target, set()).add(bytes(data))


METHODS = (b"GET ", b"POST ", b"HEAD ", b"PUT ", b"DELETE ", b"CONNECT ", b"OPTIONS ", b"PATCH ", b"TRACE ")
EDIT_WORDS = ("set-header", "add-header", "del-header", "replace-header", "set-path", "set-query")
CLI_WORDS = ("show ", "set ", "get ", "disable ", "enable ", "clear ", "help", "prompt", "shutdown ", "reload", "quit", "operator", "user")
RULE_KEYS = {  # TOML key -> rule_lines selector
    "acl": 0,
    "use_backend": 1,
    "tcp-request": 2,
    "http-request": 3,
    "http-response": 4,
    "tcp-check": 5,
    "http-check": 6,
}
rule_lines = {k: set() for k in RULE_KEYS}
request_heads = []


def walk(node, key=None):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "acl" and isinstance(v, dict):
                for line in v.values():
                    for l in line if isinstance(line, list) else [line]:
                        if isinstance(l, str):
                            rule_lines["acl"].add(l)
            elif k in RULE_KEYS and k != "acl" and isinstance(v, list):
                for l in v:
                    if isinstance(l, str):
                        rule_lines[k].add(l)
                if k in ("tcp-check", "http-check"):
                    rule_lines[k].add("\n".join(x for x in v if isinstance(x, str)))
            walk(v, k)
    elif isinstance(node, list):
        for v in node:
            walk(v, key)


for lit in literals():
    if lit.startswith(METHODS) and b"HTTP/1" in lit:
        add("request_head", lit)
        request_heads.append(lit)
    if lit.startswith(b"HTTP/1."):
        for sel in (0, 1, 2):
            add("response_head", bytes([sel]) + lit)
    if re.match(rb"^[0-9a-fA-F]+[;\r\n \t]", lit) and b"\r\n" in lit:
        add("chunked", b"\0" + lit)
        add("chunked", b"\1" + lit)
    if lit.startswith(b"PROXY ") or lit.startswith(b"\r\n\r\n\0\r\nQUIT\n"):
        add("proxy_protocol", b"\x40" + lit)
    try:
        s = lit.decode()
    except UnicodeDecodeError:
        continue
    if s.startswith(CLI_WORDS) and len(s) < 300:
        add("runtime_api", lit)
    if s.startswith(EDIT_WORDS):
        rule_lines["http-request"].add(s)
    if ("frontend" in s or "backend" in s or "global" in s) and "\n" in s:
        doc = None
        # Tests build most configurations with format!: fill the
        # placeholders with a port so the text is the TOML they load.
        filled = re.sub(r"\{[a-z_0-9.]*(:[^}]*)?\}", "18080", s.replace("{{", "\0").replace("}}", "\1"))
        filled = filled.replace("\0", "{").replace("\1", "}")
        for text in (s, filled):
            try:
                doc = tomllib.loads(text)
                lit = text.encode()
                break
            except tomllib.TOMLDecodeError:
                pass
        if doc is not None:
            add("config_toml", lit)
            walk(doc)
        elif re.search(r"(?m)^\s*(frontend|backend|listen|defaults|global)\b", s):
            add("convert", lit)

for path in sorted(glob.glob(os.path.join(ROOT, "tests", "convert", "*.cfg"))):
    add("convert", open(path, "rb").read())
for path in [os.path.join(ROOT, "packaging", "percore.toml"), os.path.join(ROOT, "config.toml")]:
    if os.path.exists(path):
        add("config_toml", open(path, "rb").read())

for key, sel in RULE_KEYS.items():
    for line in rule_lines[key]:
        add("rule_lines", bytes([sel]) + line.encode())
        if key == "acl":
            add("rule_lines", bytes([sel | 0x80]) + line.encode())
words = {w for line in rule_lines["acl"] | rule_lines["http-request"] for w in line.split()}
add("rule_lines", bytes([7]) + " ".join(sorted(words)[:64]).encode())

heads = sorted(set(request_heads), key=len)[:24] or [b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"]
edits = sorted(l for l in rule_lines["http-request"] if l.startswith(EDIT_WORDS))
for i, line in enumerate(edits):
    add("header_edit", line.encode() + b"\0" + heads[i % len(heads)])
add("header_edit", "\n".join(edits[:8]).encode() + b"\0" + heads[-1])

# PROXY v2 headers, as the unit tests build them (signature, ver/cmd,
# family, length, body).
sig = b"\r\n\r\n\0\r\nQUIT\n"
tcp4 = bytes([192, 0, 2, 1, 198, 51, 100, 7]) + struct.pack(">HH", 1234, 443)
tcp6 = bytes(15) + b"\1" + bytes(15) + b"\2" + struct.pack(">HH", 1, 2)
tlv = b"\x02\x00\x05h.com" + b"\x05\x00\x03abc"
for body, fam in ((tcp4, 0x11), (tcp6, 0x21), (tcp4 + tlv, 0x11), (b"", 0x00)):
    add("proxy_protocol", b"\x40" + sig + bytes([0x21, fam]) + struct.pack(">H", len(body)) + body + b"GET /")
add("proxy_protocol", b"\x40" + sig + bytes([0x20, 0x00, 0, 0]))

# HTTP/2 requests: flags, method, path, authority, then fields.
for req in (
    b"\0GET\n/\nexample.com\naccept: */*",
    b"\1GET\n/a?b=c\nexample.com:8443\ncookie: a=1\ncookie: b=2",
    b"\0POST\n/upload\nh\ncontent-length: 5\ncontent-type: text/plain",
    b"\0PUT\n/x\nh\nte: trailers",
    b"\1OPTIONS\n*\nh",
):
    add("h2_request", req)

for target, datas in sorted(seeds.items()):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    for data in datas:
        name = hashlib.sha1(data).hexdigest()
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
    print(f"{target}: {len(datas)} seeds")
