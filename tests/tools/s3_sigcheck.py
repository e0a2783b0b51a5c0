#!/usr/bin/python3
"""s3_sigcheck.py - a tiny S3 server for tests that checks SigV4 signatures.

    s3_sigcheck.py PORT ACCESS_KEY SECRET REGION

s3rver (the S3-compatible server of tests/integration/t_store.sh) checks
the access key id but not the signature, so a request signed wrongly would
pass there and fail on AWS.  This server recomputes every request's
signature from the AWS Signature Version 4 rules (the canonical request:
method, path, sorted and encoded query, signed headers, the payload hash
from x-amz-content-sha256; the string to sign; the derived key) and
answers 403 SignatureDoesNotMatch when it differs.  It keeps objects in
memory and serves PUT, GET, DELETE and ListObjectsV2 with at most 2 keys a
page, whose continuation tokens hold characters that must be
percent-encoded ('+', '/', '='), so paging and query encoding are both
signed and checked.  The bucket "garbage" answers listings with a 200 that
is not XML, and "broken" answers everything with a 500 and no XML.

Listens on 127.0.0.1 only; prints "ready" when listening.  Python 3
standard library only.
"""
import base64
import datetime
import hashlib
import hmac
import signal
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, KEY, SECRET, REGION = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
objects = {}            # (bucket, key) -> bytes
checked = {"ok": 0, "bad": 0}


def enc(s):
    return urllib.parse.quote(s, safe="-_.~")


def expected_signature(method, raw_path, headers, signed, date, scope_date):
    path, _, query = raw_path.partition("?")
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    canonical_query = "&".join(
        f"{enc(k)}={enc(v)}" for k, v in sorted(pairs))
    canonical_headers = "".join(
        f"{h}:{' '.join(headers.get(h, '').split())}\n" for h in signed)
    payload = headers.get("x-amz-content-sha256", "")
    creq = "\n".join([method, path, canonical_query, canonical_headers,
                      ";".join(signed), payload])
    scope = f"{scope_date}/{REGION}/s3/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", date, scope,
                     hashlib.sha256(creq.encode()).hexdigest()])
    k = ("AWS4" + SECRET).encode()
    for part in (scope_date, REGION, "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", ctype="application/xml"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, status, code, msg):
        self.reply(status, (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}'
                            f'</Code><Message>{msg}</Message></Error>').encode())

    def authorized(self):
        h = {k.lower(): v for k, v in self.headers.items()}
        auth = h.get("authorization", "")
        try:
            algo, rest = auth.split(" ", 1)
            fields = dict(p.strip().split("=", 1) for p in rest.split(","))
            cred = fields["Credential"].split("/")
            signed = fields["SignedHeaders"].split(";")
            sig = fields["Signature"]
        except (ValueError, KeyError):
            self.error(403, "AccessDenied", "no or malformed Authorization header")
            return False
        if algo != "AWS4-HMAC-SHA256" or cred[0] != KEY or cred[2:] != [REGION, "s3", "aws4_request"]:
            self.error(403, "InvalidAccessKeyId", f"bad credential scope {fields['Credential']}")
            return False
        if "host" not in signed or "x-amz-date" not in signed or \
                "x-amz-content-sha256" not in signed:
            self.error(403, "AccessDenied", f"host, x-amz-date and x-amz-content-sha256 "
                       f"must be signed, got {fields['SignedHeaders']}")
            return False
        if "x-amz-security-token" in h and "x-amz-security-token" not in signed:
            self.error(403, "AccessDenied", "x-amz-security-token must be signed")
            return False
        date = h.get("x-amz-date", "")
        try:
            when = datetime.datetime.strptime(date, "%Y%m%dT%H%M%SZ")
        except ValueError:
            self.error(403, "AccessDenied", "bad x-amz-date")
            return False
        if abs((datetime.datetime.utcnow() - when).total_seconds()) > 900:
            self.error(403, "RequestTimeTooSkewed", "x-amz-date is off by more than 15 min")
            return False
        want = expected_signature(self.command, self.path, h, signed, date, cred[1])
        if not hmac.compare_digest(want, sig):
            checked["bad"] += 1
            self.error(403, "SignatureDoesNotMatch", "The request signature we calculated "
                       "does not match the signature you provided.")
            return False
        checked["ok"] += 1
        return True

    def split(self):
        path = urllib.parse.unquote(self.path.partition("?")[0])
        parts = path.lstrip("/").split("/", 1)
        return parts[0], parts[1] if len(parts) > 1 else ""

    def body(self):
        n = int(self.headers.get("Content-Length", "0"))
        return self.rfile.read(n) if n else b""

    def do_PUT(self):
        data = self.body()
        if not self.authorized():
            return
        bucket, key = self.split()
        if bucket == "broken":
            return self.reply(500, b"internal trouble", "text/plain")
        objects[(bucket, key)] = data
        self.reply(200)

    def do_GET(self):
        if not self.authorized():
            return
        bucket, key = self.split()
        if bucket == "broken":
            return self.reply(500, b"<html>proxy error\x00\xff</html>", "text/html")
        if key == "":
            return self.list(bucket)
        if (bucket, key) not in objects:
            return self.error(404, "NoSuchKey", "The specified key does not exist.")
        self.reply(200, objects[(bucket, key)], "application/octet-stream")

    def do_DELETE(self):
        if not self.authorized():
            return
        objects.pop(self.split(), None)
        self.reply(204)

    def list(self, bucket):
        if bucket == "garbage":
            return self.reply(200, b"\x89PNG not a listing at all", "image/png")
        q = dict(urllib.parse.parse_qsl(self.path.partition("?")[2]))
        if q.get("list-type") != "2":
            return self.error(400, "InvalidArgument", "list-type=2 only")
        prefix = q.get("prefix", "")
        keys = sorted(k for b, k in objects if b == bucket and k.startswith(prefix))
        start = 0
        if "continuation-token" in q:
            # the token is base64 with '+', '/' and '=' in it on purpose
            start = int(base64.b64decode(q["continuation-token"]).split(b":")[1])
        page = keys[start:start + 2]
        more = start + 2 < len(keys)
        xml = ['<?xml version="1.0" encoding="UTF-8"?>',
               '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
               f"<Name>{bucket}</Name><Prefix>{prefix}</Prefix><KeyCount>{len(page)}</KeyCount>",
               f"<MaxKeys>2</MaxKeys><IsTruncated>{'true' if more else 'false'}</IsTruncated>"]
        for k in page:
            xml.append(f"<Contents><Key>{k}</Key><Size>{len(objects[(bucket, k)])}</Size></Contents>")
        if more:
            tok = base64.b64encode(b"\xfb\xff\xfe:%d:" % (start + 2)).decode()
            xml.append(f"<NextContinuationToken>{tok}</NextContinuationToken>")
        xml.append("</ListBucketResult>")
        self.reply(200, "".join(xml).encode())


signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
print("ready", flush=True)
try:
    server.serve_forever()
finally:
    print(f"signatures: {checked['ok']} ok, {checked['bad']} bad", flush=True)
