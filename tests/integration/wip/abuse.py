import socket, sys, time, os
n = int(sys.argv[1]); port = int(sys.argv[2])
socks = []
for i in range(n):
    s = socket.socket(); s.connect(("127.0.0.1", port))
    s.send(b"GET /metr")          # a partial request line, left idle
    socks.append(s)
big = socket.socket(); big.connect(("127.0.0.1", port))
try:
    big.sendall(b"GET / HTTP/1.1\r\nX: " + b"a" * (8 << 20))
except OSError as e:
    print("8 MB header: the server closed after", e)
g = socket.socket(); g.connect(("127.0.0.1", port)); g.send(os.urandom(5000))
def probe(path):
    t = time.time()
    c = socket.create_connection(("127.0.0.1", port), timeout=1)
    c.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while True:
        d = c.recv(65536)
        if not d: break
        data += d
    return (time.time() - t) * 1000, data.split(b"\r\n", 1)[0]
for p in (b"/healthz", b"/metrics", b"/status"):
    ms, line = probe(p)
    print(p.decode(), "%.1f ms" % ms, line.decode())
