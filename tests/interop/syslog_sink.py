#!/usr/bin/env python3
"""A syslog receiver for daemons that log only to /dev/log (Cyrus, Courier).

Usage: syslog_sink.py SOCKET LOGFILE
Listens on the unix datagram SOCKET (a namespace's /dev/log points to it) and appends each
message to LOGFILE, one a line. Runs until killed (with its namespace).
"""
import os
import socket
import sys

sock_path, log_path = sys.argv[1], sys.argv[2]
try:
    os.unlink(sock_path)
except FileNotFoundError:
    pass
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sock_path)
os.chmod(sock_path, 0o666)
with open(log_path, "ab", buffering=0) as log:
    while True:
        msg = s.recv(65536)
        log.write(msg.rstrip(b"\0\n") + b"\n")
