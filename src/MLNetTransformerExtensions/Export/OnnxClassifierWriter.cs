using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Training;
using Onnx;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Export;

/// <summary>Writes a head classifier's network as <c>model.onnx</c>: int64 inputs with dynamic batch and sequence axes, float logits out.</summary>
internal static class OnnxClassifierWriter
{
    /// <summary>The graph inputs a family takes: BERT reads token types; RoBERTa, DistilBERT and GPT-2 do not.</summary>
    public static string[] InputNames(ModelFamily family) =>
        family == ModelFamily.Bert ? ["input_ids", "attention_mask", "token_type_ids"] : ["input_ids", "attention_mask"];

    /// <summary>Builds the ONNX model of <paramref name="model"/>'s forward pass in evaluation mode.</summary>
    /// <param name="model">The network (float32 weights).</param>
    /// <param name="quantize">Whether linear layers become int8.</param>
    /// <returns>The model and the number of linear layers written as int8.</returns>
    public static (ModelProto Model, int QuantizedLayers) Build(SequenceClassificationModel model, bool quantize)
    {
        var config = model.Config;
        var writer = new OnnxGraphWriter($"{config.Family}ForSequenceClassification");
        var names = InputNames(config.Family);
        var inputIds = writer.TokenInput(names[0]);
        var attentionMask = writer.TokenInput(names[1]);
        var tokenTypeIds = names.Length > 2 ? writer.TokenInput(names[2]) : null;

        using var scope = NewDisposeScope();
        var weights = model.state_dict().ToDictionary(p => p.Key, p => p.Value.detach().to(ScalarType.Float32).cpu(), StringComparer.Ordinal);
        var layers = new OnnxLayers(writer, weights, quantize);
        var logits = config.Family switch
        {
            ModelFamily.Bert or ModelFamily.Roberta => BertOnnx.Write(layers, config, inputIds, attentionMask, tokenTypeIds),
            ModelFamily.DistilBert => DistilBertOnnx.Write(layers, config, inputIds, attentionMask),
            _ => Gpt2Onnx.Write(layers, config, inputIds, attentionMask),
        };
        writer.Node("Identity", ExportedTextClassifier.LogitsOutputName, [logits]);
        writer.FloatOutput(ExportedTextClassifier.LogitsOutputName, config.NumLabels);

        var metadata = new Dictionary<string, string>
        {
            ["model_type"] = config.Json["model_type"]?.GetValue<string>() ?? config.Family.ToString().ToLowerInvariant(),
            ["labels"] = string.Join("\n", config.Labels),
            ["quantization"] = quantize ? "int8" : "none",
        };
        var doc = $"{config.Family} sequence classifier ({config.NumLayers} layers, hidden {config.HiddenSize}, {config.NumLabels} classes) exported by MLNetTransformerExtensions"
            + (quantize ? "; linear layers int8 per output channel, activations quantized dynamically." : ".");
        return (writer.ToModel(doc, metadata), layers.QuantizedLayers);
    }

    /// <summary>Writes the model to <paramref name="path"/>.</summary>
    public static void Save(ModelProto model, string path)
    {
        using var file = File.Create(path);
        using var output = new Google.Protobuf.CodedOutputStream(file);
        model.WriteTo(output);
    }
}
