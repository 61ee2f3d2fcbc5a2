//! A loopback proxy that delays each direction, to time clients against a distant server:
//! `cargo run -p mailcat-tests --example delay_proxy -- HOST:PORT DELAY_MS` prints the port it
//! listens on, then forwards until killed.

use std::time::Duration;

use mailcat_tests::proxy::Proxy;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(target), Some(delay)) = (args.next(), args.next()) else {
        eprintln!("usage: delay_proxy HOST:PORT DELAY_MS");
        std::process::exit(64);
    };
    let (Ok(target), Ok(delay)) = (target.parse(), delay.parse::<u64>()) else {
        eprintln!("delay_proxy: HOST:PORT must be an IP address and port, DELAY_MS a number");
        std::process::exit(64);
    };
    let proxy = Proxy::start_with_delay(target, Duration::from_millis(delay));
    println!("{}", proxy.port());
    loop {
        std::thread::park();
    }
}
