namespace MLNetTransformerExtensions.Export;

/// <summary>What <see cref="TextClassifierExportCatalog.ExportTextClassifier"/> writes.</summary>
public enum TextClassifierExportFormat
{
    /// <summary>
    /// <c>model.onnx</c> (inputs <c>input_ids</c>, <c>attention_mask</c> and, for BERT, <c>token_type_ids</c>, int64
    /// (batch, sequence); output <c>logits</c>, float (batch, classes)), the tokenizer files, <c>config.json</c> with the
    /// labels, and <c>mlnet_transformers.json</c> with the settings a scorer needs.
    /// </summary>
    Onnx,

    /// <summary>
    /// The folder HuggingFace's <c>save_pretrained</c> writes (<c>config.json</c> naming the <c>*ForSequenceClassification</c>
    /// class with <c>id2label</c>/<c>label2id</c>, <c>model.safetensors</c>, tokenizer files), plus <c>mlnet_transformers.json</c>.
    /// </summary>
    HuggingFace,
}
