//! Echo load generator: `conns` WebSocket clients, each keeping `inflight` messages of `size` bytes in flight.
//! Every frame is masked with its own key, every echoed byte is compared with what was sent (a wrong or
//! missing echo counts as an error), and each round trip is timed. Writes are batched per connection, so the
//! generator stays far ahead of the server it measures. Prints one JSON line.

mod broadcast;

use std::time::{Duration, Instant};

use rustls_pki_types::pem::PemObject;

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// A client's byte stream: plain TCP or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

struct Args {
    host: String,
    /// One port per `--url` given; client i connects to `ports[i % ports.len()]` (servers of several processes).
    ports: Vec<u16>,
    path: String,
    conns: usize,
    size: usize,
    inflight: usize,
    seconds: f64,
    warmup: f64,
    binary: bool,
    /// Offer permessage-deflate and compress every message (context takeover both ways).
    deflate: bool,
    /// Compressible JSON-like payloads instead of random printable ones.
    json: bool,
    /// wss://: TLS trusting the certificate in this PEM file.
    ca: Option<String>,
    /// Broadcast mode (see broadcast.rs).
    broadcast: bool,
}

fn parse_args() -> Args {
    let mut a = Args {
        host: "127.0.0.1".into(),
        ports: Vec::new(),
        path: "/".into(),
        conns: 64,
        size: 32,
        inflight: 8,
        seconds: 5.0,
        warmup: 1.0,
        binary: false,
        deflate: false,
        json: false,
        ca: None,
        broadcast: false,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let value = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--ca" => a.ca = Some(value.clone()),
            "--url" => {
                let rest = value.trim_start_matches("ws://").trim_start_matches("wss://");
                let (hostport, path) = rest.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap_or((rest, "/".into()));
                let (host, port) = hostport.rsplit_once(':').expect("--url needs a port");
                a.host = host.trim_matches(|c| c == '[' || c == ']').into();
                a.ports.push(port.parse().expect("port"));
                a.path = path;
            }
            "--conns" => a.conns = value.parse().expect("conns"),
            "--size" => a.size = value.parse().expect("size"),
            "--inflight" => a.inflight = value.parse().expect("inflight"),
            "--seconds" => a.seconds = value.parse().expect("seconds"),
            "--warmup" => a.warmup = value.parse().expect("warmup"),
            "--binary" | "--deflate" | "--json" | "--broadcast" => {
                match argv[i].as_str() {
                    "--binary" => a.binary = true,
                    "--deflate" => a.deflate = true,
                    "--broadcast" => a.broadcast = true,
                    _ => a.json = true,
                }
                i += 1;
                continue;
            }
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    if a.ports.is_empty() {
        a.ports.push(8080);
    }
    a
}

/// Distinct payloads cycle with this period, so a lost, repeated or reordered echo shows as a mismatch.
const PERIOD: usize = 251;

/// JSON-like records, compressible the way real application messages are.
fn make_json_pattern(size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + PERIOD + 80);
    let mut n = 0u64;
    while out.len() < size + PERIOD {
        out.extend_from_slice(format!("{{\"id\":{n},\"name\":\"item {n}\",\"price\":{}.{:02},\"tags\":[\"new\",\"sale\"],\"ok\":true}},", n * 37 % 1000, n % 100).as_bytes());
        n += 1;
    }
    out
}

/// Printable ASCII (valid text) to cut payloads from: message `seq` is `pattern[offset(seq)..][..size]`.
fn make_pattern(size: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..size + PERIOD)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b' ' + (x % 95) as u8
        })
        .collect()
}

fn payload_of(pattern: &[u8], seq: u64, size: usize) -> &[u8] {
    let offset = (seq % PERIOD as u64) as usize;
    &pattern[offset..offset + size]
}

/// XORs with the mask eight bytes at a time.
fn mask_into(out: &mut Vec<u8>, payload: &[u8], mask: [u8; 4]) {
    let key = u64::from_ne_bytes([mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3]]);
    let start = out.len();
    out.extend_from_slice(payload);
    let body = &mut out[start..];
    let mut chunks = body.chunks_exact_mut(8);
    for c in &mut chunks {
        let v = u64::from_ne_bytes((&*c).try_into().unwrap()) ^ key;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

fn write_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8], mask: [u8; 4], compressed: bool) {
    out.push(0x80 | (compressed as u8) << 6 | opcode);
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 65535 {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    mask_into(out, payload, mask);
}

/// Parses one unmasked server frame at the front of `buf`: (first byte, payload range, total length).
fn parse_frame(buf: &[u8]) -> Option<(u8, std::ops::Range<usize>, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let (len, start) = match buf[1] & 0x7F {
        126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
        127 if buf.len() >= 10 => (u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize, 10),
        126 | 127 => return None,
        n => (n as usize, 2),
    };
    (buf.len() >= start + len).then(|| (buf[0], start..start + len, start + len))
}

#[derive(Default)]
struct Stats {
    messages: u64,
    errors: u64,
    latencies_us: Vec<u32>,
}

impl Stats {
    /// Adds up what the clients' tasks counted.
    async fn collect(tasks: Vec<tokio::task::JoinHandle<Stats>>) -> Stats {
        let mut all = Stats::default();
        for task in tasks {
            let s = task.await.unwrap_or_default();
            all.messages += s.messages;
            all.errors += s.errors;
            all.latencies_us.extend(s.latencies_us);
        }
        all
    }
}

/// permessage-deflate state of one client: its own compressor, and an inflater for the server's messages.
struct Deflate {
    compress: flate2::Compress,
    decompress: flate2::Decompress,
}

impl Deflate {
    fn new() -> Self {
        Deflate { compress: flate2::Compress::new(flate2::Compression::new(6), false), decompress: flate2::Decompress::new(false) }
    }

    fn deflate(&mut self, data: &[u8], out: &mut Vec<u8>) {
        out.clear();
        out.reserve(data.len() + 64);
        let start_in = self.compress.total_in();
        loop {
            let consumed = (self.compress.total_in() - start_in) as usize;
            let _ = self.compress.compress_vec(&data[consumed..], out, flate2::FlushCompress::Sync);
            if (self.compress.total_in() - start_in) as usize == data.len() && out.len() < out.capacity() {
                break;
            }
            out.reserve(out.capacity());
        }
        out.truncate(out.len() - 4);
    }

    fn inflate(&mut self, data: &[u8], out: &mut Vec<u8>) -> bool {
        out.clear();
        let mut input = data.to_vec();
        input.extend_from_slice(&[0, 0, 0xFF, 0xFF]);
        let start_in = self.decompress.total_in();
        loop {
            out.reserve(input.len() * 4 + 1024);
            let consumed = (self.decompress.total_in() - start_in) as usize;
            if self.decompress.decompress_vec(&input[consumed..], out, flate2::FlushDecompress::Sync).is_err() {
                return false;
            }
            if (self.decompress.total_in() - start_in) as usize == input.len() && out.len() < out.capacity() {
                return true;
            }
        }
    }
}

/// Opens client `id`'s connection, with TLS when a CA was given.
async fn open(args: &Args, id: usize) -> std::io::Result<Box<dyn Io>> {
    let tcp = TcpStream::connect((args.host.as_str(), args.ports[id % args.ports.len()])).await?;
    tcp.set_nodelay(true)?;
    let Some(ca) = &args.ca else { return Ok(Box::new(tcp)) };
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(ca)?;
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.map_err(std::io::Error::other)?).map_err(std::io::Error::other)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    Ok(Box::new(tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await?))
}

async fn handshake(stream: &mut Box<dyn Io>, args: &Args) -> std::io::Result<Vec<u8>> {
    let extensions = if args.deflate { "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" } else { "" };
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: {}:{}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extensions}\r\n",
        args.path, args.host, args.ports[0]
    );
    stream.write_all(req.as_bytes()).await?;
    stream.flush().await?;
    let mut buf = Vec::with_capacity(4096);
    loop {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::other("closed during handshake"));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            if !buf.starts_with(b"HTTP/1.1 101") {
                return Err(std::io::Error::other("upgrade refused"));
            }
            if args.deflate && !String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase().contains("permessage-deflate") {
                return Err(std::io::Error::other("permessage-deflate not negotiated"));
            }
            return Ok(buf.split_off(end + 4));
        }
    }
}

async fn client(args: std::sync::Arc<Args>, id: u64, start: Instant) -> Stats {
    let mut stats = Stats::default();
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let stop = measure_from + Duration::from_secs_f64(args.seconds);
    let Ok(mut stream) = open(&args, id as usize).await else {
        stats.errors += 1;
        return stats;
    };
    let Ok(mut rbuf) = handshake(&mut stream, &args).await else {
        stats.errors += 1;
        return stats;
    };
    let opcode = if args.binary { 2 } else { 1 };
    let (mut next_send, mut next_recv) = (0u64, 0u64);
    let mut sent_at = vec![Instant::now(); args.inflight];
    let pattern = if args.json { make_json_pattern(args.size) } else { make_pattern(args.size) };
    let mut deflate = args.deflate.then(Deflate::new);
    let (mut packed, mut unpacked) = (Vec::new(), Vec::new());
    let seq_base = id * 17;
    let mut wbuf = Vec::new();
    let mut rng = id.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1;
    let mut chunk = vec![0u8; 256 * 1024];
    loop {
        let now = Instant::now();
        if now < stop {
            wbuf.clear();
            while next_send < next_recv + args.inflight as u64 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let payload = payload_of(&pattern, seq_base + next_send, args.size);
                let mask = (rng as u32).to_ne_bytes();
                match deflate.as_mut() {
                    Some(d) => {
                        d.deflate(payload, &mut packed);
                        write_frame(&mut wbuf, opcode, &packed, mask, true);
                    }
                    None => write_frame(&mut wbuf, opcode, payload, mask, false),
                }
                sent_at[(next_send % args.inflight as u64) as usize] = now;
                next_send += 1;
            }
            if !wbuf.is_empty() && (stream.write_all(&wbuf).await.is_err() || stream.flush().await.is_err()) {
                stats.errors += 1;
                return stats;
            }
        } else if next_recv == next_send {
            break;
        }
        let n = match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => n,
            _ => {
                stats.errors += next_send - next_recv;
                return stats;
            }
        };
        rbuf.extend_from_slice(&chunk[..n]);
        let mut consumed = 0;
        let arrived = Instant::now();
        while let Some((first, range, total)) = parse_frame(&rbuf[consumed..]) {
            let mut body = &rbuf[consumed + range.start..consumed + range.end];
            if first & 0x40 != 0 {
                let inflated = deflate.as_mut().is_some_and(|d| d.inflate(body, &mut unpacked));
                body = if inflated { &unpacked } else { &[] };
            }
            if first & 0x0F != opcode || body != payload_of(&pattern, seq_base + next_recv, args.size) {
                stats.errors += 1;
            }
            let t0 = sent_at[(next_recv % args.inflight as u64) as usize];
            if t0 >= measure_from && arrived <= stop {
                stats.messages += 1;
                stats.latencies_us.push((arrived - t0).as_micros().min(u32::MAX as u128) as u32);
            }
            next_recv += 1;
            consumed += total;
        }
        rbuf.drain(..consumed);
    }
    let _ = stream.write_all(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE8]).await;
    stats
}

fn main() {
    let args = std::sync::Arc::new(parse_args());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let results = rt.block_on(async {
        if args.broadcast {
            return broadcast::run(args.clone()).await;
        }
        let start = Instant::now();
        let tasks: Vec<_> = (0..args.conns as u64).map(|id| tokio::spawn(client(args.clone(), id, start))).collect();
        Stats::collect(tasks).await
    });
    let mut lat = results.latencies_us;
    lat.sort_unstable();
    let pct = |p: f64| lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1))).copied().unwrap_or(0);
    println!(
        "{{\"messages\":{},\"errors\":{},\"msgs_per_sec\":{:.0},\"mb_per_sec\":{:.1},\"p50_us\":{},\"p99_us\":{}}}",
        results.messages,
        results.errors,
        results.messages as f64 / args.seconds,
        results.messages as f64 * args.size as f64 / args.seconds / 1e6,
        pct(0.50),
        pct(0.99)
    );
}
