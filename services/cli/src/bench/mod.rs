//! `vectron bench`: loads a dataset into each target (a running Vectron over
//! REST or gRPC, a worker directly, raw hnsw_rs in this process), with a
//! progress line and searches probing latency while it loads; then sweeps
//! `ef` at each client-thread count and reports recall@k, QPS and latency
//! percentiles as one table (and as JSON with `--json`). Does network and
//! file I/O; the measurements themselves are in [`measure`].

pub mod dataset;
pub mod filtered;
pub mod measure;
pub mod report;
pub mod target;

use std::path::PathBuf;
use std::sync::Arc;

use thiserror::Error;
use vectron_worker::distance::Metric;

use crate::args::BenchArgs;
use dataset::{Dataset, DatasetError};
use report::Report;
use target::{CollectionSpec, Target, TargetError};

/// Why a benchmark could not run.
#[derive(Debug, Error)]
pub enum BenchError {
    /// The dataset could not be read.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// A target failed.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// The command line is inconsistent.
    #[error("{0}")]
    Usage(String),
    /// The report could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

fn metric_named(name: &str) -> Result<Metric, BenchError> {
    match name {
        "cosine" => Ok(Metric::Cosine),
        "l2" => Ok(Metric::L2),
        "dot" => Ok(Metric::Dot),
        other => Err(BenchError::Usage(format!(
            "--metric {other:?}: expected cosine, l2 or dot"
        ))),
    }
}

fn load_dataset(args: &BenchArgs) -> Result<Dataset, BenchError> {
    let k = args.k;
    if !(1..=100).contains(&k) {
        return Err(BenchError::Usage(format!("--k {k}: expected 1 to 100")));
    }
    let mut dataset = match (&args.dataset, &args.random) {
        (Some(path), None) if path.is_dir() => Dataset::from_dir(path)?,
        (Some(path), None) => {
            let queries = args.queries_file.as_deref().ok_or_else(|| {
                BenchError::Usage("an .fvecs base file needs --queries-file".into())
            })?;
            let metric = metric_named(args.metric.as_deref().unwrap_or("l2"))?;
            Dataset::from_fvecs(
                path,
                queries,
                args.truth_file.as_deref(),
                metric,
                k.max(100),
            )?
        }
        (None, Some(shape)) => {
            let (n, dim) = shape
                .split_once('x')
                .and_then(|(n, d)| Some((n.parse().ok()?, d.parse().ok()?)))
                .filter(|&(n, d): &(usize, usize)| n > 0 && d > 0 && d <= 65_536)
                .ok_or_else(|| {
                    BenchError::Usage(format!(
                        "--random {shape:?}: expected NxDIM, e.g. 20000x128"
                    ))
                })?;
            let metric = metric_named(args.metric.as_deref().unwrap_or("l2"))?;
            eprintln!("bench: generating {n} x {dim} random vectors and their exact neighbours");
            Dataset::random(n, dim, args.max_queries.min(1_000), metric, k)
        }
        _ => {
            return Err(BenchError::Usage(
                "give exactly one of --dataset or --random".into(),
            ));
        }
    };
    if let Some(name) = &args.metric {
        let wanted = metric_named(name)?;
        if wanted != dataset.metric {
            return Err(BenchError::Usage(format!(
                "--metric {name}: the dataset's ground truth is for {:?}",
                dataset.metric
            )));
        }
    }
    if dataset.truth.iter().any(|t| t.len() < k) {
        return Err(BenchError::Usage(format!(
            "the ground truth holds fewer than k = {k} neighbours per query"
        )));
    }
    dataset.limit_queries(args.max_queries);
    Ok(dataset)
}

async fn targets(
    args: &BenchArgs,
    spec: &CollectionSpec,
    capacity: usize,
) -> Result<Vec<Arc<dyn Target>>, BenchError> {
    let mut out: Vec<Arc<dyn Target>> = Vec::new();
    for raw in &args.target {
        let (kind, address) = raw.split_once('=').unwrap_or((raw.as_str(), ""));
        let target: Arc<dyn Target> = match (kind, address) {
            ("hnsw-rs", _) => Arc::new(target::RawHnsw::new(spec.clone(), capacity)),
            ("index", _) => Arc::new(target::InProcessIndex::new(spec.clone())),
            ("rest", url) if !url.is_empty() => Arc::new(target::Rest::new(
                url,
                args.api_key.as_deref(),
                spec.clone(),
            )?),
            ("grpc", url) if !url.is_empty() => {
                Arc::new(target::GatewayGrpc::connect(url, spec.clone()).await?)
            }
            ("worker", pd) if !pd.is_empty() => Arc::new(target::Worker::new(pd, spec.clone())?),
            _ => {
                return Err(BenchError::Usage(format!(
                    "--target {raw:?}: expected rest=URL, grpc=URL, worker=PD_ADDR, index or hnsw-rs"
                )));
            }
        };
        out.push(target);
    }
    if out.is_empty() {
        return Err(BenchError::Usage("give at least one --target".into()));
    }
    Ok(out)
}

/// Runs `vectron bench`.
pub async fn run(args: BenchArgs) -> Result<(), BenchError> {
    let dataset = Arc::new(load_dataset(&args)?);
    let spec = CollectionSpec {
        name: args.collection.clone(),
        dimension: dataset.dimension,
        metric: dataset.metric,
        m: args.m,
        ef_construction: args.ef_construction,
        replication_factor: args.replication_factor,
        tagged: args.filtered,
    };
    let targets = targets(&args, &spec, dataset.base.len()).await?;
    eprintln!(
        "bench: {} ({} queries, k {}, m {}, ef_construction {})",
        dataset.label,
        dataset.queries.len(),
        args.k,
        args.m,
        args.ef_construction
    );
    let filtered_sets = if args.filtered {
        eprintln!("bench: computing exact neighbours under each filter");
        filtered::filtered_datasets(&dataset, &filtered::SWEEP, args.k)
            .into_iter()
            .map(Arc::new)
            .collect()
    } else {
        Vec::new()
    };
    let mut report = Report::new(&dataset.label, args.k, args.m, args.ef_construction);
    for target in targets {
        let name = target.name();
        eprintln!("bench: {name}");
        target.create().await?;
        let load = measure::load(target.clone(), dataset.clone(), &args).await?;
        report.load(&name, load);
        for &ef in &args.ef {
            for &threads in &args.threads {
                let figures =
                    measure::search(target.clone(), dataset.clone(), args.k, ef, threads, &args)
                        .await?;
                eprintln!(
                    "  ef {ef:>4}, {threads} thread(s): recall {:.3}, {:.0} QPS, p50 {:.2} ms",
                    figures.recall, figures.qps, figures.p50_ms
                );
                report.search(&name, ef, threads, figures);
            }
        }
        if target.filters() {
            for (filter, filtered_set) in filtered::SWEEP.iter().zip(&filtered_sets) {
                let filtered: Arc<dyn Target> =
                    Arc::new(filtered::FilteredTarget::new(target.clone(), *filter));
                let filtered_name = filtered.name();
                for &ef in &args.ef {
                    for &threads in &args.threads {
                        let figures = measure::search(
                            filtered.clone(),
                            filtered_set.clone(),
                            args.k,
                            ef,
                            threads,
                            &args,
                        )
                        .await?;
                        eprintln!(
                            "  filter {:>2}%, ef {ef:>4}, {threads} thread(s): recall {:.3}, {:.0} QPS, p50 {:.2} ms",
                            filter.percent(),
                            figures.recall,
                            figures.qps,
                            figures.p50_ms
                        );
                        report.search(&filtered_name, ef, threads, figures);
                    }
                }
            }
        }
        if !args.keep {
            target.drop_collection().await?;
        }
    }
    println!("{}", report.table());
    if let Some(path) = &args.json {
        std::fs::write(path, report.json()).map_err(|source| BenchError::Write {
            path: path.clone(),
            source,
        })?;
        eprintln!("bench: wrote {}", path.display());
    }
    Ok(())
}
