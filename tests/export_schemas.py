"""JSON schemas of what `persona-sae export` writes, built from the formats' own sources (read, not copied),
and a minimal validator for the subset of JSON Schema they use (jsonschema is not a dependency).

Sources read:

- Neuronpedia (hijohnnylin/neuronpedia):
  - apps/webapp/prisma/schema.prisma: the Neuron, Activation and Explanation tables (column names,
    types, which are nullable);
  - utils/neuronpedia-utils/neuronpedia_utils/export-data.py: the export layout,
    MODEL/SOURCE/{features,activations,explanations}/batch-N.jsonl(.gz), one row per line, and the
    columns exported per table;
  - utils/neuronpedia-utils/neuronpedia_utils/db_models/{activation,feature,explanation}.py and
    convert-saedashboard-to-neuronpedia-export.py (as in the zazer0/neuronpedia fork of it): how a
    SAEDashboard batch becomes those rows (maxValue = max(values), maxValueTokenIndex its index,
    qualifyingTokenIndex, binMin/binMax/binContains).
- SAEDashboard (jbloomAus/SAEDashboard):
  - sae_dashboard/neuronpedia/neuronpedia_runner.py: writes OUTPUT/batch-N.json per feature batch;
  - sae_dashboard/neuronpedia/neuronpedia_converter.py: the fields filled per feature and activation,
    and the "TOP ACTIVATIONS" group's bin_min -1, bin_max = the max, bin_contains -1;
  - sae_dashboard/neuronpedia/neuronpedia_dashboard.py (and the older neuronpedia_feature.py): the
    NeuronpediaDashboardBatch / Feature / Activation dataclasses, whose keys a batch may hold (they are
    built with ``**dict``, so an unknown key fails to load: additionalProperties is false here).
"""

from __future__ import annotations

NUM = {"type": "number"}
INT = {"type": "integer"}
STR = {"type": "string"}
BOOL = {"type": "boolean"}
NULL_STR = {"type": ["string", "null"]}
NULL_NUM = {"type": ["number", "null"]}
NULL_INT = {"type": ["integer", "null"]}
NUMS = {"type": "array", "items": NUM}
INTS = {"type": "array", "items": INT}
STRS = {"type": "array", "items": STR}


def _obj(props: dict, required=None, extra: bool = False) -> dict:
    return {"type": "object", "properties": props, "required": list(props if required is None else required),
            "additionalProperties": extra}


# ---- Neuronpedia: one row per line of features/, activations/, explanations/ batch-N.jsonl.gz
# schema.prisma `model Neuron`; the column list export-data.py writes for it
NP_NEURON = _obj({
    "modelId": STR, "layer": STR, "index": STR, "creatorId": NULL_STR, "sourceSetName": NULL_STR,
    "maxActApprox": NULL_NUM, "frac_nonzero": NUM,
    "freq_hist_data_bar_heights": NUMS, "freq_hist_data_bar_values": NUMS,
    "logits_hist_data_bar_heights": NUMS, "logits_hist_data_bar_values": NUMS,
    "neg_str": STRS, "neg_values": NUMS, "pos_str": STRS, "pos_values": NUMS,
    "neuron_alignment_indices": INTS, "neuron_alignment_values": NUMS, "neuron_alignment_l1": NUMS,
    "correlated_neurons_indices": INTS, "correlated_neurons_pearson": NUMS, "correlated_neurons_l1": NUMS,
    "decoder_weights_dist": NUMS, "topkCosSimIndices": INTS, "topkCosSimValues": NUMS,
    "hasVector": BOOL, "vector": NUMS, "vectorLabel": NULL_STR, "hookName": NULL_STR,
    "vectorDefaultSteerStrength": NULL_NUM,
})

# schema.prisma `model Activation` (tokens String[], values Float[], maxValue Float, maxValueTokenIndex Int, ...)
NP_ACTIVATION = _obj({
    "id": STR, "modelId": STR, "layer": STR, "index": STR, "creatorId": STR, "dataSource": NULL_STR,
    "tokens": STRS, "values": NUMS, "maxValue": NUM, "maxValueTokenIndex": INT, "minValue": NUM,
    "qualifyingTokenIndex": NULL_INT, "dfaValues": NUMS, "dfaMaxValue": NULL_NUM, "dfaTargetIndex": NULL_INT,
    "binMin": NULL_NUM, "binMax": NULL_NUM, "binContains": NULL_NUM,
})

# schema.prisma `model Explanation` (description String, authorId String, typeName and
# explanationModelName nullable foreign keys, notes String?)
NP_EXPLANATION = _obj({
    "id": STR, "modelId": STR, "layer": STR, "index": STR, "authorId": STR, "description": STR,
    "notes": NULL_STR, "typeName": NULL_STR, "explanationModelName": NULL_STR,
})

# ---- SAEDashboard: OUTPUT/batch-N.json (neuronpedia_runner.py), keys of neuronpedia_dashboard.py's dataclasses
SD_ACTIVATION = _obj({
    "bin_min": NUM, "bin_max": NUM, "bin_contains": NUM, "tokens": STRS, "values": NUMS,
    "qualifying_token_index": INT, "dfa_values": NUMS, "dfa_maxValue": NUM, "dfa_targetIndex": INT,
}, required=["bin_min", "bin_max", "bin_contains", "tokens", "values", "qualifying_token_index"])

SD_FEATURE = _obj({
    "feature_index": INT,
    "neuron_alignment_indices": INTS, "neuron_alignment_values": NUMS, "neuron_alignment_l1": NUMS,
    "correlated_neurons_indices": INTS, "correlated_neurons_l1": NUMS, "correlated_neurons_pearson": NUMS,
    "correlated_features_indices": INTS, "correlated_features_l1": NUMS, "correlated_features_pearson": NUMS,
    "neg_str": STRS, "neg_values": NUMS, "pos_str": STRS, "pos_values": NUMS, "frac_nonzero": NUM,
    "freq_hist_data_bar_values": NUMS, "freq_hist_data_bar_heights": NUMS,
    "logits_hist_data_bar_heights": NUMS, "logits_hist_data_bar_values": NUMS,
    "n_prompts_total": INT, "n_tokens_in_prompt": INT, "dataset": STR,
    "activations": {"type": "array", "items": SD_ACTIVATION},
    "decoder_weights_dist": NUMS, "vector": NUMS,
})

SD_BATCH = _obj({"model_id": STR, "layer": INT, "sae_set": STR, "sae_id_suffix": NULL_STR,
                 "features": {"type": "array", "items": SD_FEATURE}})

# ours, beside the batches: the labels, which the batch format has no field for
SD_EXPLANATIONS = {"type": "object", "additionalProperties": _obj(
    {"tag": STR, "source": STR, "note": STR, "scores": {"type": "object"}, "explanation": {"type": "object"}},
    required=[], extra=False)}


_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def _is(v, t: str) -> bool:
    if t == "integer":
        return isinstance(v, int) and not isinstance(v, bool)
    if t == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    return isinstance(v, _TYPES[t])


def errors(value, schema: dict, path: str = "$") -> list[str]:
    """Every violation of ``schema`` in ``value`` (type, properties, required, additionalProperties,
    items): the subset of JSON Schema the schemas above use."""
    out = []
    types = schema.get("type")
    if types is not None:
        types = [types] if isinstance(types, str) else types
        if not any(_is(value, t) for t in types):
            return [f"{path}: {type(value).__name__} is not {'/'.join(types)}"]
    if isinstance(value, dict):
        props = schema.get("properties", {})
        out += [f"{path}: missing {k}" for k in schema.get("required", []) if k not in value]
        extra = schema.get("additionalProperties", True)
        for k, v in value.items():
            if k in props:
                out += errors(v, props[k], f"{path}.{k}")
            elif extra is False:
                out.append(f"{path}: unexpected key {k}")
            elif isinstance(extra, dict):
                out += errors(v, extra, f"{path}.{k}")
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            out += errors(v, schema["items"], f"{path}[{i}]")
    return out
