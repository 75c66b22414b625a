//! Impaired links for the `latency` mode, taken from netsim's scenario files so that the bench
//! and netsim describe networks the same way: a path to any scenario file, or the name of one
//! of the scenarios that ship with netsim (`lte`, `3g`, `wifi`, ...).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use chatroom_netsim::model::LinkConfig;
use chatroom_netsim::scenario::Scenario;

/// A link from a scenario.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The scenario's name.
    pub name: String,
    /// Its link: the one its first client group with a link sits behind, timeline included.
    pub link: LinkConfig,
    /// Its seed.
    pub seed: u64,
}

/// Where netsim's own scenarios are, in this source tree.
pub fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("netsim").join("scenarios")
}

/// The names of the scenarios in [`scenarios_dir`].
pub fn known_profiles() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(scenarios_dir())
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|entry| {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    name.strip_suffix(".toml").map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Loads `spec`: a scenario file, or the name of one of netsim's scenarios.
pub fn load(spec: &str) -> anyhow::Result<Profile> {
    let path = if Path::new(spec).is_file() {
        PathBuf::from(spec)
    } else {
        scenarios_dir().join(format!("{spec}.toml"))
    };
    if !path.is_file() {
        bail!(
            "no netsim scenario file or profile named {spec}; profiles: {}",
            known_profiles().join(", ")
        );
    }
    let scenario = Scenario::from_file(&path)
        .with_context(|| format!("cannot use netsim scenario {}", path.display()))?;
    let link_name = scenario
        .clients
        .iter()
        .find_map(|group| group.link.clone())
        .or_else(|| scenario.links.keys().next().cloned())
        .with_context(|| format!("scenario {} has no link", scenario.name))?;
    let link = scenario.links[&link_name].clone();
    Ok(Profile { name: scenario.name, link, seed: scenario.seed })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netsims_profiles_load_by_name() {
        let names = known_profiles();
        if names.is_empty() {
            println!("skipped: no netsim scenarios in {}", scenarios_dir().display());
        }
        for name in names {
            let profile = load(&name).unwrap_or_else(|e| panic!("{name}: {e:#}"));
            assert!(profile.link.validate().is_ok());
        }
        assert!(load("no-such-profile").unwrap_err().to_string().contains("profiles:"));
    }

    #[test]
    fn a_scenario_file_gives_its_first_groups_link() {
        let dir =
            std::env::temp_dir().join(format!("chatroom-bench-profile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("two-links.toml");
        std::fs::write(
            &path,
            r#"
            seed = 9
            duration = "5s"
            [links.a]
            up = { delay = "5ms" }
            [links.b]
            up = { delay = "50ms" }
            [[clients]]
            name = "c"
            rooms = ["r"]
            link = "b"
            "#,
        )
        .unwrap();
        let profile = load(path.to_str().unwrap()).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(profile.name, "two-links");
        assert_eq!(profile.seed, 9);
        assert_eq!(profile.link.up.delay, std::time::Duration::from_millis(50));
    }
}
