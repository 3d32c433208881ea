//! The compiled-module cache: modules are compiled once, and only files hookrun wrote are loaded from it.

use super::*;

// ---------------------------------------------------------------------------------------------------------------
// The compiled-module cache

#[test]
fn compiled_modules_are_cached_and_only_files_hookrun_wrote_are_loaded() {
    let cache = tempfile::tempdir().unwrap();
    let module = &guests().well_behaved;

    let engine = WasmEngine::new(cache.path().to_path_buf()).unwrap();
    assert_eq!(engine.load(module).unwrap().source, ModuleSource::Compiled);
    assert_eq!(engine.load(module).unwrap().source, ModuleSource::Cache);
    // Another process (engine) with the same settings reuses it.
    let again = WasmEngine::new(cache.path().to_path_buf()).unwrap();
    assert_eq!(again.load(module).unwrap().source, ModuleSource::Cache);

    let file = engine.cache_path(module).unwrap();
    assert!(file.is_file());

    // A damaged file is not deserialized: recompiled and rewritten.
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&file, &bytes).unwrap();
    assert_eq!(engine.load(module).unwrap().source, ModuleSource::Compiled);
    assert_eq!(engine.load(module).unwrap().source, ModuleSource::Cache);

    // A file others could have written is not trusted.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
    assert_eq!(engine.load(module).unwrap().source, ModuleSource::Compiled);

    // A file without hookrun's header is not trusted either.
    let raw = wasmtime_free_serialized_stand_in();
    std::fs::write(&file, raw).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(engine.load(module).unwrap().source, ModuleSource::Compiled);
}

/// Bytes that look like a compiled module to nobody but are not hookrun's: an ELF header.
fn wasmtime_free_serialized_stand_in() -> Vec<u8> {
    let mut bytes = b"\x7fELF".to_vec();
    bytes.resize(4096, 0);
    bytes
}

/// Cold (compile) versus cached (deserialize) start of a hook. Run with
/// `cargo test --release -p hookrun-e2e --test e2e -- --ignored --nocapture start_times`.
#[tokio::test]
#[ignore = "a measurement, not a check"]
async fn start_times() {
    let module = &guests().pg_dump;
    let size = std::fs::metadata(module).unwrap().len();
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    for _ in 0..5 {
        let cache = tempfile::tempdir().unwrap();
        let engine = WasmEngine::new(cache.path().to_path_buf()).unwrap();
        let loaded = engine.load(module).unwrap();
        assert_eq!(loaded.source, ModuleSource::Compiled);
        cold.push(loaded.elapsed);
        let engine = WasmEngine::new(cache.path().to_path_buf()).unwrap();
        let loaded = engine.load(module).unwrap();
        assert_eq!(loaded.source, ModuleSource::Cache);
        warm.push(loaded.elapsed);
    }
    // A whole hook run from the cache: load, instantiate, run, exit.
    let cache = tempfile::tempdir().unwrap();
    let engine = WasmEngine::new(cache.path().to_path_buf()).unwrap();
    engine.load(module).unwrap();
    let mut runs = Vec::new();
    for _ in 0..5 {
        let mut world = World::new();
        let docker = FakeExec::printing(&[b"PGDMP"]);
        let h = WasmHook::new(
            spec(
                "pg",
                module,
                json!({ "database": "app" }),
                r#"exec = [{ service = "db", programs = ["pg_dump"] }]"#,
            ),
            engine.clone(),
            Some(docker as Arc<dyn ServiceExec>),
        );
        let started = Instant::now();
        world.run(&h).await.unwrap();
        runs.push(started.elapsed());
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    println!(
        "module {} ({} KiB): compile {:?}, cached load {:?}, whole cached hook run {:?} (medians of 5)",
        module.display(),
        size / 1024,
        median(&mut cold),
        median(&mut warm),
        median(&mut runs)
    );
}
