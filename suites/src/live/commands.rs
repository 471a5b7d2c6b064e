//! What a person types into a running `nodekit up` to break the world by hand: kill a node,
//! cut it from the API server, heal it. The host side checks each line with [`parse`] and hands
//! it to the world, which runs it and answers with one line.

/// One command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeCommand {
    /// SIGKILL the node's proxy, agent and runtime and take it off the LAN (node death).
    Kill(String),
    /// Drop the node's traffic to and from the API server (its pods keep serving).
    Partition(String),
    /// Undo a partition; a killed node comes back on the LAN (its processes stay dead).
    Heal(String),
    Help,
}

/// The usage line.
pub const HELP: &str = "commands: kill <node> (agent, proxy and runtime SIGKILLed, node off the network) | \
partition <node> (cut from the API server) | heal <node> | help";

/// Parses one line against the world's node names; the error says what to type instead.
pub fn parse(line: &str, nodes: &[String]) -> Result<NodeCommand, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let node = |verb: &str| -> Result<String, String> {
        match words.get(1..) {
            Some([n]) if nodes.iter().any(|x| x == n) => Ok(n.to_string()),
            Some([n]) => Err(format!("{verb}: no node {n:?}; the nodes are {}", nodes.join(", "))),
            _ => Err(format!("{verb} takes one node name, e.g. `{verb} {}`", nodes.first().map_or("node-a", String::as_str))),
        }
    };
    match words.first().copied() {
        Some("kill") => node("kill").map(NodeCommand::Kill),
        Some("partition") => node("partition").map(NodeCommand::Partition),
        Some("heal") => node("heal").map(NodeCommand::Heal),
        Some("help") if words.len() == 1 => Ok(NodeCommand::Help),
        Some(other) => Err(format!("unknown command {other:?}; {HELP}")),
        None => Err(HELP.to_string()),
    }
}

/// The line the world is sent for a command (its canonical spelling).
pub fn render(cmd: &NodeCommand) -> String {
    match cmd {
        NodeCommand::Kill(n) => format!("kill {n}"),
        NodeCommand::Partition(n) => format!("partition {n}"),
        NodeCommand::Heal(n) => format!("heal {n}"),
        NodeCommand::Help => "help".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes() -> Vec<String> {
        vec!["node-a".into(), "node-b".into()]
    }

    #[test]
    fn commands_and_their_errors() {
        assert_eq!(parse("kill node-a", &nodes()), Ok(NodeCommand::Kill("node-a".into())));
        assert_eq!(parse("  partition   node-b ", &nodes()), Ok(NodeCommand::Partition("node-b".into())));
        assert_eq!(parse("heal node-a", &nodes()), Ok(NodeCommand::Heal("node-a".into())));
        assert_eq!(parse("help", &nodes()), Ok(NodeCommand::Help));
        assert_eq!(parse("kill node-c", &nodes()), Err("kill: no node \"node-c\"; the nodes are node-a, node-b".into()));
        assert_eq!(parse("kill", &nodes()), Err("kill takes one node name, e.g. `kill node-a`".into()));
        assert!(parse("reboot node-a", &nodes()).unwrap_err().starts_with("unknown command \"reboot\"; commands:"));
        assert_eq!(render(&parse("kill   node-b", &nodes()).unwrap()), "kill node-b");
    }
}
