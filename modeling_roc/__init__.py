"""ROC (Retrieval over Classification) for multimodal relation extraction, as a transformers model.

Importing the package registers the classes with the Auto* factories (for this process) and marks them for
`save_pretrained` to write an `auto_map` + the code, so saved folders load anywhere with `trust_remote_code=True`.
This package is exactly what is shipped: configuration, model, processor, pair-level pipeline, inference precision
(bfloat16 / int8) and the model card `push_to_hub` writes. Training helpers,
triple extraction and Hub publishing live in `roc_mre`.
"""

from transformers import AutoConfig, AutoModel, AutoProcessor

from .configuration_roc import EMBEDDED_ENCODERS, ENTITY_MARKERS, ROCConfig, resolve_encoder_path
from .modeling_roc import ROCModel, ROCOutput, bank_contrastive_loss, in_batch_contrastive_loss
from .pipeline_roc import TASK, ROCRelationExtractionPipeline
from .precision_roc import INT8_KEEP_FLOAT, PRECISIONS, bfloat16_encoders, for_inference, quantize_int8
from .processing_roc import DEFAULT_TYPE_WORDS, UNKNOWN_TYPE, ROCProcessor


EMBEDDED_TEXT_ENCODER = "embedded:all-MiniLM-L6-v2"

ROCConfig.register_for_auto_class()
ROCModel.register_for_auto_class("AutoModel")
ROCProcessor.register_for_auto_class()
AutoConfig.register("roc", ROCConfig, exist_ok=True)
AutoModel.register(ROCConfig, ROCModel, exist_ok=True)
AutoProcessor.register(ROCConfig, ROCProcessor, exist_ok=True)


__all__ = [
    "DEFAULT_TYPE_WORDS",
    "EMBEDDED_ENCODERS",
    "EMBEDDED_TEXT_ENCODER",
    "ENTITY_MARKERS",
    "INT8_KEEP_FLOAT",
    "PRECISIONS",
    "ROCConfig",
    "ROCModel",
    "ROCOutput",
    "ROCProcessor",
    "ROCRelationExtractionPipeline",
    "TASK",
    "UNKNOWN_TYPE",
    "bank_contrastive_loss",
    "bfloat16_encoders",
    "for_inference",
    "in_batch_contrastive_loss",
    "quantize_int8",
    "resolve_encoder_path",
]
