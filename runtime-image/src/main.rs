//! `runtime-image --spec FILE`: keeps a CRI runtime's container running in the Docker Engine
//! that `DOCKER_HOST` names (see the library documentation).

use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let spec = match (args.next(), args.next(), args.next()) {
        (Some(flag), Some(path), None) if flag == "--spec" => PathBuf::from(path),
        _ => {
            eprintln!("usage: runtime-image --spec FILE   (with DOCKER_HOST naming the engine)");
            std::process::exit(2);
        }
    };
    let spec = match runtime_image::ContainerSpec::read(&spec) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("runtime-image: {e}");
            std::process::exit(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(runtime_image::run(&spec, |ready| println!("{}", ready.line())))?;
    Ok(())
}
