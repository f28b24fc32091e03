//! A plain HTTP/1.1 GET over std's TcpStream: enough for a loopback test.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

/// An answer: status, headers (lowercase names), body.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        assert_eq!(self.status, 200, "{}", self.body);
        serde_json::from_str(&self.body).expect("JSON body")
    }
}

/// `GET path` from `addr` with extra request headers.
pub fn get(addr: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut s = TcpStream::connect(addr).expect("connect to the admin endpoint");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).expect("UTF-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP answer");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect::<Vec<_>>();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Answer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").expect("chunk size line");
        let n = usize::from_str_radix(size.trim(), 16).expect("hex chunk size");
        if n == 0 {
            return out;
        }
        out.push_str(&after[..n]);
        rest = &after[n + 2..];
    }
}

/// The admin address a node wrote to `DIR/admin.addr`.
pub fn admin_addr(data_dir: &Path) -> String {
    let start = std::time::Instant::now();
    loop {
        if let Ok(a) = std::fs::read_to_string(data_dir.join("admin.addr"))
            && !a.trim().is_empty()
        {
            return a.trim().to_string();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no admin.addr in {}",
            data_dir.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Chunk bytes every node behind `admin` took in for the traffic
/// `classes` (`client`, `chain`, `replica`), summed over the nodes, from
/// `/metrics`.
pub fn transfer_bytes_in(admin: &[String], classes: &[&str]) -> u64 {
    admin
        .iter()
        .map(|a| {
            let r = get(a, "/metrics", &[]);
            assert_eq!(r.status, 200, "{}", r.body);
            classes
                .iter()
                .filter_map(|class| {
                    let series =
                        format!(r#"ifs_transfer_bytes_total{{direction="in",class="{class}"}} "#);
                    r.body
                        .lines()
                        .find_map(|l| l.strip_prefix(series.as_str()))
                        .and_then(|v| v.trim().parse::<f64>().ok())
                })
                .sum::<f64>() as u64
        })
        .sum()
}

/// Chunk bytes every node behind `admin` received and stored (from a
/// client or along a chain), summed over the nodes.
pub fn chunk_bytes_received(admin: &[String]) -> u64 {
    transfer_bytes_in(admin, &["client", "chain"])
}
