//! The layer stack of a definition's resources: chosen from the definition, the request and
//! what the nodes support, and refused when it cannot replicate what the request asks for.

use crate::error::{code, ApiError, ObjKind};
use crate::kinds::LayerKind;
use crate::name::NodeName;
use crate::objects::ResourceDefinition;
use crate::plan::{Observed, Op, Reply};

/// Whether `node` can run DRBD, from what it reported last (also while it is offline: what
/// it reported when it was last connected still holds).
pub(super) fn drbd_support(observed: &dyn Observed, node: &NodeName) -> Result<(), String> {
    match observed.capabilities(node) {
        Some(c) if c.supports_layer(LayerKind::Drbd) => Ok(()),
        Some(c) => Err(c.layer_reason(LayerKind::Drbd)),
        None if !observed.is_online(node) => {
            Err("the node is offline, so its DRBD support is unknown".into())
        }
        None => Err("the node has not reported its capabilities".into()),
    }
}

/// Why `node` cannot run DRBD, when it is known to lack it; a node that has never reported
/// (offline since the controller started) is not known to lack it.
fn drbd_lacking(observed: &dyn Observed, node: &NodeName) -> Option<String> {
    observed
        .capabilities(node)
        .filter(|c| !c.supports_layer(LayerKind::Drbd))
        .map(|c| c.layer_reason(LayerKind::Drbd))
}

pub(super) fn no_replication_error(
    rd: &ResourceDefinition,
    diskful: usize,
    why: Vec<String>,
) -> ApiError {
    ApiError::new(
        code::FAIL_INVLD_LAYER_STACK,
        ObjKind::Rsc,
        format!(
            "Resource '{}' would get {diskful} diskful copies without the DRBD layer",
            rd.name
        ),
    )
    .cause(if why.is_empty() {
        format!(
            "The layer list of '{}' is '{}': without DRBD, copies on several nodes would be independent, unreplicated volumes",
            rd.name,
            layers_str(&rd.layer_stack)
        )
    } else {
        format!("DRBD is not available: {}", why.join("; "))
    })
    .correction("Install DRBD on the nodes to replicate, or place a single diskful replica (place count 1)")
}

pub(super) fn layers_str(layers: &[LayerKind]) -> String {
    layers
        .iter()
        .map(|l| l.as_str().to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(",")
}

/// Fixes the layer stack for a resource definition and checks that the nodes involved can
/// build it. Without a stack on the definition or in the request, DRBD is used when every
/// node supports it, STORAGE alone otherwise.
pub(super) fn choose_layers(
    observed: &dyn Observed,
    rd: &ResourceDefinition,
    requested: &[LayerKind],
    nodes: &[&NodeName],
    diskful: usize,
) -> Result<Layers, ApiError> {
    if !rd.layer_stack.is_empty() && !requested.is_empty() && requested != rd.layer_stack.as_slice()
    {
        return Err(ApiError::new(
            code::FAIL_INVLD_LAYER_STACK,
            ObjKind::Rsc,
            format!(
                "Resource '{}' uses the layers '{}', the request asks for '{}'",
                rd.name,
                layers_str(&rd.layer_stack),
                layers_str(requested)
            ),
        ));
    }
    let fixed = if !rd.layer_stack.is_empty() {
        Some(rd.layer_stack.clone())
    } else if !requested.is_empty() {
        Some(requested.to_vec())
    } else {
        None
    };
    let chosen = rd.layers_chosen || !requested.is_empty();
    // A node that never reported (offline) does not decide against DRBD: it reports a
    // missing DRBD itself when it connects.
    let missing: Vec<String> = nodes
        .iter()
        .filter_map(|n| drbd_lacking(observed, n).map(|why| format!("node '{n}': {why}")))
        .collect();
    let layers = match fixed {
        Some(l) => l,
        None if missing.is_empty() && !nodes.is_empty() => {
            vec![LayerKind::Drbd, LayerKind::Storage]
        }
        None => vec![LayerKind::Storage],
    };
    if layers.contains(&LayerKind::Drbd) {
        if !missing.is_empty() {
            return Err(ApiError::new(
                code::FAIL_STLT_DOES_NOT_SUPPORT_LAYER,
                ObjKind::Rsc,
                format!("Resource '{}' needs DRBD on every node it is placed on", rd.name),
            )
            .cause(missing.join("; "))
            .correction("Install DRBD on those nodes, or use the layer list 'storage' for a single local copy"));
        }
    } else if diskful > 1 && !chosen {
        return Err(no_replication_error(
            rd,
            diskful,
            if rd.layer_stack.is_empty() && requested.is_empty() {
                missing
            } else {
                Vec::new()
            },
        ));
    }
    Ok(Layers {
        stack: layers,
        chosen,
    })
}

/// The layer stack of a definition's resources, and whether the user chose it.
pub(super) struct Layers {
    pub(super) stack: Vec<LayerKind>,
    pub(super) chosen: bool,
}

/// Said when the user's own layer list gives several diskful resources without DRBD.
pub(super) fn unreplicated_warning(
    rd: &ResourceDefinition,
    diskful: usize,
    layers: &[LayerKind],
) -> Reply {
    Reply::warning(
        Op::Create,
        ObjKind::Rsc,
        code::WARN_INVLD_CONF,
        format!(
            "Resource '{}' has {diskful} diskful resources with the layer list '{}': they are independent, unreplicated volumes",
            rd.name,
            layers_str(layers)
        ),
    )
    .with_cause("Without the DRBD layer nothing copies data between the nodes")
    .with_correction("Use a layer list with DRBD (e.g. 'drbd,storage') for replicated volumes")
    .with_ref("RscDfn", rd.name.as_str())
}
