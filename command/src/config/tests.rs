use super::*;

#[test]
fn the_default_config_parses() {
    let config = Config::default_embedded();
    assert_eq!(config.listeners.len(), 1);
}
