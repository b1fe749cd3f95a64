//! The compiled core alone, in GB/s of message values, next to full JSON parsers walking the
//! same documents: `cargo bench --manifest-path native/Cargo.toml` (see bench/README.md).
//!
//! Messages are shaped like the benchmark corpus (bench/corpus.py): rule-hit reports with
//! nested objects, node lists, HTML, quotes, backslashes, newlines and non-ASCII text, about
//! a fifth of them in the keys the job drops, in an envelope of about 250 bytes; message values
//! of about 1 KB, 10 KB and 100 KB, each size drawn from the same pool sizes as the corpus
//! (512, 128, 32 distinct reports), every message its own buffer, about 16 MB per size.
//!
//! Measured, each over every message of a size:
//! - `core batch`: `decode_batch`, what the job calls per slice (UTF-8 check, JSON walk,
//!   contract checks, compact report copy, binary COPY rows);
//! - `as sent`: the same, over the same documents written as the producer of these reports
//!   writes them (Python's `json.dumps`: a space after every `,` and `:`, then a newline), so
//!   the report is copied without its whitespace; in GB/s of the compact values, like the
//!   other columns, so that each column compares the time per message;
//! - `core walk`: the UTF-8 check and the scanner's validating walk alone (no copy);
//! - `serde_json raw`: serde_json validating the document without building it (`&RawValue`);
//! - `serde_json Value`, `sonic-rs Value`: a full parse into a tree, what a decoder that
//!   parses and re-serialises would pay before re-serialising.
//!
//! serde_json is built with the features the fidelity test needs (`arbitrary_precision`,
//! `preserve_order`): numbers kept as text and ordered maps make its `Value` slower than a
//! default build; its raw walk is barely affected.
//!
//! Each figure is the median of `BENCH_SAMPLES` (default 9) samples of at least
//! `BENCH_SAMPLE_MS` (default 200) milliseconds each; the six runs take turns within each
//! sample. `BENCH_BYTES` (default 16000000) sets the bytes of messages per size.

use std::hint::black_box;
use std::time::{Duration, Instant};

use _native::batch::{decode_batch, Input};
use _native::json::{Discard, Scanner};
use serde_json::{json, Value};

/// SplitMix64, as in the fidelity test: the same documents on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    fn uuid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | (b >> 48) & 0x3fff,
            b & 0xffff_ffff_ffff
        )
    }
    fn stamp(&mut self) -> String {
        let s = self.below(10_000_000);
        format!(
            "2024-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
            1 + s % 12,
            1 + s % 28,
            s % 24,
            s % 60,
            (s / 60) % 60,
            self.below(1_000_000)
        )
    }
}

const RULES: [(&str, &str); 7] = [
    (
        "nodes_requirements_check",
        "NODES_MINIMUM_REQUIREMENTS_NOT_MET",
    ),
    ("ccxdev_auxiliary_rule", "CCXDEV_E2E_TEST_RULE"),
    (
        "samples_op_failed_image_import_check",
        "SAMPLES_FAILED_IMAGE_IMPORT_ERR",
    ),
    ("cluster_wide_proxy_auth_check", "AUTH_OPERATOR_PROXY_ERROR"),
    ("image_registry_pv_not_bound", "IMAGE_REGISTRY_PV_NOT_BOUND"),
    (
        "master_defined_as_machinesets",
        "MASTER_DEFINED_AS_MACHINESETS",
    ),
    ("ocp_version_end_of_life", "OCP4X_BEYOND_EOL"),
];
const ROLES: [&[&str]; 3] = [&["worker"], &["master"], &["infra", "worker"]];
const TAGS: [&str; 10] = [
    "openshift",
    "performance",
    "service_availability",
    "security",
    "configuration",
    "networking",
    "registry",
    "storage",
    "incident",
    "sap",
];
/// The corpus's texts, `{}` standing for a name.
const TEXTS: [&str; 6] = [
    "<p>Node <b>{}</b> has less memory than the <a href=\"https://docs.openshift.com/container-platform/4.14/installing/\">minimum requirements</a> &amp; may fail.</p>",
    "Ünïcödé résumé — 日本語のテキスト ✓ naïve café: {} in Zürich; Ωmega ≥ 16 GiB",
    "error: pod \"{}\" failed:\n\tback-off 5m0s restarting\n\tpath C:\\\\data\\\\{}",
    "<ul><li>Check <code>oc get nodes -o wide</code></li><li>Review {} events</li></ul>",
    "The image import for «{}» failed: manifest unknown (¿reintentar? 再試行)",
    "regex ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ did not match \\\"{}\\\" (tab\there)",
];

fn text(rng: &mut Rng, name: &str) -> String {
    rng.pick(&TEXTS).replace("{}", name)
}

fn node(rng: &mut Rng) -> Value {
    let name = format!("ip-10-0-{}-{}.ec2.internal", rng.below(256), rng.below(256));
    let roles = *rng.pick(&ROLES);
    json!({
        "name": name,
        "roles": roles,
        "memory": (rng.unit() * 6000.0 + 400.0).round() / 100.0,
        "memory_req": 16,
        "cpu": *rng.pick(&[2, 4, 8, 16]),
        "cpu_req": 4,
        "conditions": [{
            "type": *rng.pick(&["Ready", "MemoryPressure", "DiskPressure"]),
            "status": *rng.pick(&["True", "False", "Unknown"]),
            "message": text(rng, &name),
            "lastTransitionTime": rng.stamp(),
        }],
    })
}

fn hit(rng: &mut Rng, kind: &str, nodes: u64) -> Value {
    let (module, key) = *rng.pick(&RULES);
    let nodes: Vec<Value> = (0..nodes).map(|_| node(rng)).collect();
    let tags: Vec<&str> = (0..3).map(|_| *rng.pick(&TAGS)).collect();
    json!({
        "rule_id": format!("{module}|{key}"),
        "component": format!("ccx_rules_ocp.external.rules.{module}.report"),
        "type": kind,
        "key": key,
        "details": {
            "type": kind,
            "error_key": key,
            "nodes": nodes,
            "link": format!("https://access.redhat.com/solutions/{}", 1_000_000 + rng.below(9_000_000)),
            "ratio": (rng.unit() * 1e6).round() / 1e6,
            "count": rng.below(10_000),
            "summary": text(rng, module),
        },
        "tags": tags,
        "links": {"jira": [format!("https://issues.redhat.com/browse/OCPBUGS-{}", rng.below(99_999))]},
    })
}

/// One `Report` object about `target` bytes long, as bench/corpus.py builds it.
fn report(rng: &mut Rng, target: usize) -> Value {
    let mut report = json!({
        "system": {"metadata": {"cluster_id": rng.uuid()}, "hostname": null},
        "fingerprints": [],
        "version": 1,
        "analysis_metadata": {
            "start": "2025-01-01T00:00:00.000000Z",
            "execution_context": "ccx_ocp_core.context.InsightsOperatorContext",
            "plugin_sets": {"insights-core": {"version": "insights-core-3.4.7-1"}},
        },
        "reports": [],
        "skips": [],
        "info": [],
        "pass": [],
    });
    let mut size = serde_json::to_vec(&report).expect("serialisable").len();
    let nodes = (target as u64 / 4000).max(1);
    let goal = target.saturating_sub(250);
    while size < goal {
        let small = goal - size < 1500;
        let (section, item) = if small || rng.unit() < 0.8 {
            let n = if small { 0 } else { 1 + rng.below(nodes) };
            ("reports", hit(rng, "rule", n))
        } else {
            let section = *rng.pick(&["skips", "info", "pass"]);
            (section, hit(rng, section, 1))
        };
        size += serde_json::to_vec(&item).expect("serialisable").len() + 1;
        report[section].as_array_mut().expect("a list").push(item);
    }
    report
}

/// JSON as Python's `json.dumps` writes it by default: `", "` between items, `": "` after keys.
struct AsPython;

impl serde_json::ser::Formatter for AsPython {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.begin_array_value(writer, first)
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
    ) -> std::io::Result<()> {
        writer.write_all(b": ")
    }
}

/// `value` as the producer sends it: Python's separators and a trailing newline.
fn as_python(value: &[u8]) -> Vec<u8> {
    let parsed: Value = serde_json::from_slice(value).expect("JSON");
    let mut out = Vec::with_capacity(value.len() * 11 / 10);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, AsPython);
    serde::Serialize::serialize(&parsed, &mut ser).expect("serialisable");
    out.push(b'\n');
    out
}

/// About `total` bytes of messages of about `target` bytes each.
fn messages(target: usize, pool: usize, total: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut rng = Rng(seed);
    let reports: Vec<Value> = (0..pool).map(|_| report(&mut rng, target)).collect();
    let mut out = Vec::new();
    let mut bytes = 0;
    while bytes < total {
        let mut envelope = json!({
            "OrgID": 1 + rng.below(2_000),
            "ClusterName": rng.uuid(),
            "Report": rng.pick(&reports).clone(),
            "LastChecked": rng.stamp(),
            "Version": 2,
            "RequestId": format!("{:016x}", rng.next()),
            "Metadata": {"gathering_time": rng.stamp()},
        });
        if rng.unit() >= 0.05 {
            envelope["AccountNumber"] = json!(1 + rng.below(9_999_999));
        }
        let value = serde_json::to_vec(&envelope).expect("serialisable");
        bytes += value.len();
        out.push(value);
    }
    out
}

/// Median GB/s of each of `runs` over `bytes` per pass. The runs take turns within each sample,
/// so on a busy machine they share its load alike and their ratios hold.
fn measure(
    bytes: usize,
    samples: usize,
    sample: Duration,
    runs: &mut [Box<dyn FnMut() + '_>],
) -> Vec<f64> {
    let mut rates = vec![Vec::new(); runs.len()];
    for run in runs.iter_mut() {
        run(); // warm up: page in the buffers, train the predictors
    }
    for _ in 0..samples {
        for (run, rates) in runs.iter_mut().zip(&mut rates) {
            let start = Instant::now();
            let mut passes = 0;
            while start.elapsed() < sample {
                run();
                passes += 1;
            }
            rates.push((bytes * passes) as f64 / start.elapsed().as_nanos() as f64);
        }
    }
    rates
        .into_iter()
        .map(|mut r| {
            r.sort_by(f64::total_cmp);
            r[r.len() / 2]
        })
        .collect()
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let samples = env_number("BENCH_SAMPLES", 9);
    let sample = Duration::from_millis(env_number("BENCH_SAMPLE_MS", 200) as u64);
    let total = env_number("BENCH_BYTES", 16_000_000);
    println!(
        "GB/s of message values, median of {samples} samples of {} ms",
        sample.as_millis()
    );
    println!(
        "{:>6} {:>6} {:>10} | {:>10} {:>10} {:>10} {:>14} {:>16} {:>15}",
        "size",
        "msgs",
        "avg bytes",
        "core batch",
        "as sent",
        "core walk",
        "serde_json raw",
        "serde_json Value",
        "sonic-rs Value"
    );
    for (name, target, pool) in [
        ("1k", 1_000, 512),
        ("10k", 10_000, 128),
        ("100k", 100_000, 32),
    ] {
        let values = messages(target, pool, total, 2026 + target as u64);
        let bytes: usize = values.iter().map(Vec::len).sum();
        let inputs: Vec<Input> = values
            .iter()
            .enumerate()
            .map(|(i, v)| Input {
                value: Some(v),
                partition: 0,
                offset: i as i64,
            })
            .collect();
        let decoded = decode_batch(&inputs, i64::MAX);
        assert_eq!(decoded.rows, values.len(), "every message is valid");
        let sent: Vec<Vec<u8>> = values.iter().map(|v| as_python(v)).collect();
        let sent_inputs: Vec<Input> = sent
            .iter()
            .zip(&inputs)
            .map(|(v, i)| Input {
                value: Some(v),
                ..*i
            })
            .collect();
        let copied = decode_batch(&sent_inputs, i64::MAX);
        assert_eq!(copied.rows, values.len(), "every message is valid as sent");
        assert_eq!(
            copied.report_bytes, decoded.report_bytes,
            "the same reports stored"
        );

        let mut runs: Vec<Box<dyn FnMut()>> = vec![
            Box::new(|| {
                black_box(decode_batch(black_box(&inputs), i64::MAX));
            }),
            Box::new(|| {
                black_box(decode_batch(black_box(&sent_inputs), i64::MAX));
            }),
            Box::new(|| {
                for v in &values {
                    let text = std::str::from_utf8(black_box(v)).expect("UTF-8");
                    let mut sc = Scanner::new(text.as_bytes());
                    sc.value(&mut Discard).expect("JSON");
                    sc.end().expect("one document");
                    black_box(sc.pos);
                }
            }),
            Box::new(|| {
                for v in &values {
                    let raw: &serde_json::value::RawValue =
                        serde_json::from_slice(black_box(v)).expect("JSON");
                    black_box(raw);
                }
            }),
            Box::new(|| {
                for v in &values {
                    let value: Value = serde_json::from_slice(black_box(v)).expect("JSON");
                    black_box(value);
                }
            }),
            Box::new(|| {
                for v in &values {
                    let value: sonic_rs::Value = sonic_rs::from_slice(black_box(v)).expect("JSON");
                    black_box(value);
                }
            }),
        ];
        let rates = measure(bytes, samples, sample, &mut runs);
        let [batch, sent, walk, raw, serde_value, sonic] = rates[..] else {
            unreachable!("six runs")
        };
        println!(
            "{name:>6} {:>6} {:>10} | {batch:>10.2} {sent:>10.2} {walk:>10.2} {raw:>14.2} {serde_value:>16.2} {sonic:>15.2}",
            values.len(),
            bytes / values.len(),
        );
    }
}
