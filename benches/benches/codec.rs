//! Codec throughput: mailcat's decoders on realistic server streams, with imap-codec and
//! imap-proto on the same IMAP inputs in the same run.
//!
//! Run: `cargo bench -p mailcat-benches --bench codec` (criterion prints MiB/s or GiB/s per input).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use imap_codec::decode::Decoder as _;
use mailcat_benches::{bodystructure_stream, ehlo_reply, fetch_stream, pop3_retr};
use mailcat_codec::core::dot;
use mailcat_codec::{imap, pop3, smtp, Decode, Limits};

/// Decodes a whole IMAP stream with mailcat's streaming decoder, through the decode contract a
/// driver uses; returns the responses seen.
fn mailcat_imap(input: &[u8]) -> usize {
    let mut decoder = imap::ResponseDecoder::new(Limits::imap());
    let mut rest = input;
    let mut responses = 0;
    while !rest.is_empty() {
        let (used, event) = Decode::decode(&mut decoder, rest)
            .into_result()
            .expect("valid stream");
        if let imap::Event::Response(response) = event {
            black_box(&response);
            responses += 1;
        }
        rest = &rest[used..];
    }
    responses
}

/// The same with imap-codec's response decoder.
fn imap_codec(input: &[u8]) -> usize {
    let codec = imap_codec::ResponseCodec::new();
    let mut rest = input;
    let mut responses = 0;
    while !rest.is_empty() {
        let (remaining, response) = codec.decode(rest).expect("valid stream");
        black_box(&response);
        responses += 1;
        rest = remaining;
    }
    responses
}

/// The same with imap-proto.
fn imap_proto(input: &[u8]) -> usize {
    let mut rest = input;
    let mut responses = 0;
    while !rest.is_empty() {
        let (remaining, response) = imap_proto::Response::parse(rest).expect("valid stream");
        black_box(&response);
        responses += 1;
        rest = remaining;
    }
    responses
}

fn imap_streams(c: &mut Criterion) {
    let inputs = [
        ("fetch_1000x4KiB", fetch_stream(1000, 4096)),
        ("bodystructure_1000", bodystructure_stream(1000)),
    ];
    for (name, input) in &inputs {
        // All three must agree on how many responses there are, or the comparison is void.
        let count = mailcat_imap(input);
        assert_eq!(count, imap_codec(input), "imap-codec disagrees on {name}");
        assert_eq!(count, imap_proto(input), "imap-proto disagrees on {name}");
        let mut group = c.benchmark_group(format!("imap/{name}"));
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_with_input(BenchmarkId::new("mailcat", input.len()), input, |b, i| {
            b.iter(|| mailcat_imap(i));
        });
        group.bench_with_input(
            BenchmarkId::new("imap-codec", input.len()),
            input,
            |b, i| b.iter(|| imap_codec(i)),
        );
        group.bench_with_input(
            BenchmarkId::new("imap-proto", input.len()),
            input,
            |b, i| b.iter(|| imap_proto(i)),
        );
        group.finish();
    }
}

fn smtp_ehlo(c: &mut Criterion) {
    let input = ehlo_reply();
    let limits = Limits::smtp();
    let mut group = c.benchmark_group("smtp");
    group.throughput(Throughput::Bytes(input.len() as u64));
    group.bench_function("ehlo_reply", |b| {
        b.iter(|| {
            let mut decoder = smtp::ReplyDecoder::new(limits);
            let (_, reply) = Decode::decode(&mut decoder, black_box(&input))
                .into_result()
                .expect("valid reply");
            let extensions = smtp::Extensions::from_reply(&reply).expect("250 reply");
            black_box(extensions.size())
        });
    });
    group.finish();
}

/// A POP3 RETR body through the streaming decoder (dot-unstuffing included), through the
/// decode contract a driver uses: each chunk is a range of the input.
fn mailcat_pop3_retr(input: &[u8]) -> usize {
    let mut decoder = pop3::Decoder::new(Limits::pop3());
    let (used, _) = decoder.decode(b"+OK ready\r\n").expect("greeting");
    assert_eq!(used, 11);
    decoder.expect(pop3::Expect::MultiLine(pop3::Body::Chunks));
    let mut rest = input;
    let mut octets = 0;
    loop {
        let (used, event) = Decode::decode(&mut decoder, rest)
            .into_result()
            .expect("valid body");
        match event {
            pop3::Event::BodyChunk(chunk) => octets += black_box(&rest[chunk]).len(),
            pop3::Event::End => return octets,
            _ => {}
        }
        rest = &rest[used..];
    }
}

fn pop3_and_dot(c: &mut Criterion) {
    let input = pop3_retr(10 * 1000 * 1000);
    let mut group = c.benchmark_group("pop3");
    group.throughput(Throughput::Bytes(input.len() as u64));
    group.bench_function("retr_10MB", |b| b.iter(|| mailcat_pop3_retr(&input)));
    group.finish();

    let body = dot::unstuff_all(
        &input[input.iter().position(|&b| b == b'\n').expect("status line") + 1..],
    )
    .expect("valid body")
    .0;
    let mut group = c.benchmark_group("smtp");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("dot_stuff_10MB", |b| {
        let mut out = Vec::with_capacity(body.len() + body.len() / 20);
        b.iter(|| {
            out.clear();
            let mut stuffer = dot::DotStuffer::new();
            for chunk in body.chunks(64 * 1024) {
                stuffer.push(chunk, &mut out);
            }
            stuffer.finish(&mut out);
            black_box(out.len())
        });
    });
    group.finish();
}

criterion_group!(benches, imap_streams, smtp_ehlo, pop3_and_dot);
criterion_main!(benches);
