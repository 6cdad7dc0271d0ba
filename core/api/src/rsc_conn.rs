//! Model <-> wire for resource connections.

use strata_model::objects::ResourceConnection as Model;

use crate::types::ResourceConnection;

/// A resource connection as LINSTOR shows it: its two nodes in the order they are kept.
pub fn resource_connection(c: &Model) -> ResourceConnection {
    ResourceConnection {
        node_a: c.node_a.to_string(),
        node_b: c.node_b.to_string(),
        props: c.props.clone(),
        flags: crate::convert::flag_names(&c.flags),
        // DRBD proxy ports belong to DRBD Proxy, which this controller does not drive.
        port: None,
        drbd_proxy_port_a: None,
        drbd_proxy_port_b: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ResourceConnectionModify;
    use strata_model::{NodeName, ResourceName};

    #[test]
    fn wire_shape() {
        let c = Model {
            name: ResourceName::new("r1").unwrap(),
            node_a: NodeName::new("alpha").unwrap(),
            node_b: NodeName::new("Beta").unwrap(),
            props: [("DrbdOptions/Net/protocol".to_string(), "A".to_string())].into(),
            flags: Default::default(),
            uuid: "u".into(),
        };
        let v = serde_json::to_value(resource_connection(&c)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "node_a": "alpha",
                "node_b": "Beta",
                "props": {"DrbdOptions/Net/protocol": "A"},
                "flags": []
            })
        );
        let m: ResourceConnectionModify = serde_json::from_str(
            r#"{"override_props": {"DrbdOptions/Net/protocol": "A"}, "delete_props": null, "delete_namespaces": ["Aux"]}"#,
        )
        .unwrap();
        let change = crate::convert::props_change(&m.props);
        assert_eq!(change.set["DrbdOptions/Net/protocol"], "A");
        assert!(change.delete.is_empty());
        assert_eq!(change.delete_namespaces, vec!["Aux".to_string()]);
    }
}
