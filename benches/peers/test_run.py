"""Checks of the harness's verification (no lab needed): python3 benches/peers/test_run.py"""
import os
import tempfile
import unittest

import run


class Verification(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()

    def tearDown(self):
        for name in os.listdir(self.dir):
            os.remove(os.path.join(self.dir, name))
        os.rmdir(self.dir)

    def write(self, name, data):
        with open(os.path.join(self.dir, name), "wb") as f:
            f.write(data)

    def test_crlf_size_counts_bare_line_feeds_twice(self):
        self.write("m", b"a\nb\r\n\n")
        self.assertEqual(run.crlf_size(os.path.join(self.dir, "m")), 8)

    def test_files_pass_only_with_every_message_and_byte(self):
        self.write("1.eml", b"x\r\n")
        self.write("2.eml", b"y\n")          # a Maildir file with LF: 3 bytes as served
        self.write(".state", b"ignored")
        run.check_files(self.dir, 2, 6)
        with self.assertRaises(run.Failed):
            run.check_files(self.dir, 3, 9)  # a message missing
        with self.assertRaises(run.Failed):
            run.check_files(self.dir, 2, 7)  # a byte missing

    def test_reported_counts_must_match(self):
        run.check_reported("messages=2000 bytes=8192027\n", 2000, 8192027)
        with self.assertRaises(run.Failed):
            run.check_reported("messages=2000 bytes=8188027\n", 2000, 8192027)
        with self.assertRaises(run.Failed):
            run.check_reported("messages=1999 bytes=8192027\n", 2000, 8192027)
        with self.assertRaises(run.Failed):
            run.check_reported("nothing\n", 2000, 8192027)

    def test_stdout_must_be_the_whole_message(self):
        run.STDOUT_SIZE = 209715200
        run.check_stdout(209715200)
        run.STDOUT_SIZE = 209715199
        with self.assertRaises(run.Failed):
            run.check_stdout(209715200)  # a byte missing


if __name__ == "__main__":
    unittest.main()
