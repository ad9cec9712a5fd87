//! Throughput benchmark: starts the simulator with an on-disk database in a temporary
//! directory and drives CreateHITWithHITType with many concurrent, signed keep-alive
//! connections, then prints one JSON object of figures (successful requests per second, and
//! the failures) on stdout; a readable line goes to stderr.
//!
//! ```text
//! cargo run --release -p turkform-sim --example throughput -- [REQUESTS] [CONNECTIONS] [--sdk]
//! ```
//!
//! The default client is raw HTTP/1.1 over tokio (signing with [`turkform_sim::sigv4`]); `--sdk`
//! uses aws-sdk-mturk instead, which costs far more client CPU per request on the same cores.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use turkform_sim::SimConfig;

const TARGET: &str = "MTurkRequesterServiceV20170117.";
const QUESTION: &str = "<HTMLQuestion xmlns=\"http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2011-11-11/HTMLQuestion.xsd\"><HTMLContent><![CDATA[<!DOCTYPE html><html><body><crowd-form><crowd-image-classifier name=\"label\" src=\"https://example.org/photo.jpg\" categories=\"['cat','dog','bird']\"></crowd-image-classifier></crowd-form></body></html>]]></HTMLContent><FrameHeight>0</FrameHeight></HTMLQuestion>";

struct Conn {
    reader: BufReader<TcpStream>,
    host: String,
}

impl Conn {
    async fn open(host: &str) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(host).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            reader: BufReader::new(stream),
            host: host.to_owned(),
        })
    }

    /// One signed call; returns (status, body).
    async fn call(&mut self, op: &str, body: &str) -> std::io::Result<(u16, String)> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let headers = turkform_sim::sigv4::sign_json_request(
            &self.host,
            &format!("{TARGET}{op}"),
            body.as_bytes(),
            turkform_sim::DEFAULT_ACCESS_KEY_ID,
            turkform_sim::DEFAULT_SECRET_ACCESS_KEY,
            "us-east-1",
            now,
        );
        let mut req = format!("POST / HTTP/1.1\r\nContent-Length: {}\r\n", body.len());
        for (name, value) in headers {
            req.push_str(name);
            req.push_str(": ");
            req.push_str(&value);
            req.push_str("\r\n");
        }
        req.push_str("\r\n");
        req.push_str(body);
        self.reader.get_mut().write_all(req.as_bytes()).await?;
        let mut line = String::new();
        self.reader.read_line(&mut line).await?;
        let status: u16 = line.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut length = 0usize;
        loop {
            line.clear();
            if self.reader.read_line(&mut line).await? == 0 {
                return Err(std::io::Error::other("connection closed"));
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).await?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let sdk = args.iter().any(|a| a == "--sdk");
    let numbers: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let total = numbers
        .first()
        .copied()
        .unwrap_or(if sdk { 5_000 } else { 30_000 });
    let connections = numbers.get(1).copied().unwrap_or(64);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run(total, connections, sdk))
}

async fn run(
    total: usize,
    connections: usize,
    sdk: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("bench.db");
    let sim = turkform_sim::start(
        "127.0.0.1:0",
        SimConfig {
            db_path: Some(db.clone()),
            ..SimConfig::default()
        },
    )
    .await?;
    let host = sim.addr.to_string();
    let mut setup = Conn::open(&host).await?;
    let (status, body) = setup
        .call(
            "CreateHITType",
            r#"{"Title":"Label a photo","Description":"Pick the animal","Reward":"0.05","AssignmentDurationInSeconds":300,"AutoApprovalDelayInSeconds":86400}"#,
        )
        .await?;
    if status != 200 {
        return Err(format!("CreateHITType failed: {status} {body}").into());
    }
    let type_id = serde_json::from_str::<serde_json::Value>(&body)?["HITTypeId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    let next = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    if sdk {
        let conf = aws_sdk_mturk::Config::builder()
            .behavior_version(aws_sdk_mturk::config::BehaviorVersion::latest())
            .region(aws_sdk_mturk::config::Region::new("us-east-1"))
            .endpoint_url(sim.endpoint_url())
            .credentials_provider(aws_sdk_mturk::config::Credentials::new(
                turkform_sim::DEFAULT_ACCESS_KEY_ID,
                turkform_sim::DEFAULT_SECRET_ACCESS_KEY,
                None,
                None,
                "bench",
            ))
            .build();
        let client = aws_sdk_mturk::Client::from_conf(conf);
        for _ in 0..connections {
            let (client, next, failures, type_id) = (
                client.clone(),
                next.clone(),
                failures.clone(),
                type_id.clone(),
            );
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if i >= total {
                        break;
                    }
                    let result = client
                        .create_hit_with_hit_type()
                        .hit_type_id(&type_id)
                        .max_assignments(3)
                        .lifetime_in_seconds(86_400)
                        .question(QUESTION)
                        .requester_annotation(format!("bench/item-{i}"))
                        .unique_request_token(format!("bench-{i}"))
                        .send()
                        .await;
                    if result.is_err() {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
    } else {
        for _ in 0..connections {
            let (next, failures, type_id, host) = (
                next.clone(),
                failures.clone(),
                type_id.clone(),
                host.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let Ok(mut conn) = Conn::open(&host).await else {
                    failures.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if i >= total {
                        break;
                    }
                    let body = serde_json::json!({
                        "HITTypeId": type_id,
                        "MaxAssignments": 3,
                        "LifetimeInSeconds": 86_400,
                        "Question": QUESTION,
                        "RequesterAnnotation": format!("bench/item-{i}"),
                        "UniqueRequestToken": format!("bench-{i}"),
                    })
                    .to_string();
                    match conn.call("CreateHITWithHITType", &body).await {
                        Ok((200, _)) => {}
                        _ => {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
    }
    for t in tasks {
        t.await?;
    }
    let elapsed = started.elapsed();
    let failed = failures.load(Ordering::Relaxed);
    let ok = (total as u64).saturating_sub(failed);
    // Only answered requests count: a failed request is not throughput.
    let rate = ok as f64 / elapsed.as_secs_f64();
    let client = if sdk {
        "aws-sdk-mturk tasks"
    } else {
        "signed keep-alive connections"
    };
    eprintln!(
        "{ok} of {total} CreateHITWithHITType answered over {connections} concurrent {client} in {:.2} s: {rate:.0} successful requests/s ({failed} failed), world persisted in SQLite (WAL) at {}",
        elapsed.as_secs_f64(),
        db.display()
    );
    sim.shutdown().await;
    let rows = rusqlite_count(&db);
    eprintln!("HIT rows committed to disk: {rows}");
    // The last line is one JSON object of figures, for bench/run.py.
    println!(
        "{}",
        serde_json::json!({
            "operation": "CreateHITWithHITType",
            "requests": total,
            "ok": ok,
            "failed": failed,
            "seconds": elapsed.as_secs_f64(),
            "ok_per_second": rate,
            "connections": connections,
            "client": client,
            "hit_rows_on_disk": rows.parse::<u64>().ok(),
        })
    );
    Ok(())
}

/// Counts committed HIT rows by reopening the file, to show the figure includes persistence.
fn rusqlite_count(db: &std::path::Path) -> String {
    rusqlite::Connection::open(db)
        .and_then(|c| {
            c.query_row("SELECT count(*) FROM records WHERE kind = 'hit'", [], |r| {
                r.get::<_, i64>(0)
            })
        })
        .map(|n| n.to_string())
        .unwrap_or_else(|e| format!("cannot read the database: {e}"))
}
