using System.Text.Json.Nodes;
using Microsoft.ML;
using MLNetTransformerExtensions.MLNet;
using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.Export;

/// <summary>
/// Export of a fitted text classifier for other runtimes: <c>mlContext.Model.ExportTextClassifier(model, folder)</c>
/// writes an ONNX graph (for ONNX Runtime, ML.NET's <c>ApplyOnnxModel</c>, Triton, SynapseML) or a HuggingFace folder.
/// </summary>
/// <remarks>
/// <para>The ONNX graph is written operator by operator from the network's weights (opset 17: LayerNormalization, exact
/// GELU through Erf), with dynamic batch and sequence axes; it takes token ids, so the tokenizer files travel with it.
/// Rows may be padded on either side: positions count real tokens and GPT-2 reads each row's last real token, as
/// this library's TorchSharp models do.</para>
/// <para>Classifiers of the head strategy export to both formats. The prompt strategy (label words scored by a
/// language-model head) exports only to HuggingFace (its language-model folder plus the template and label words in
/// <c>mlnet_transformers.json</c>): its scores depend on the template, demonstrations and calibration applied around
/// the network, which an ONNX graph of token ids cannot carry.</para>
/// </remarks>
public static class TextClassifierExportCatalog
{
    /// <summary>Exports the transformer classifier inside <paramref name="model"/> to <paramref name="outputFolder"/>.</summary>
    /// <param name="catalog">The model operations (<c>mlContext.Model</c>).</param>
    /// <param name="model">A fitted classifier, or a pipeline holding one (for example what <c>mlContext.Model.Load</c> returned).</param>
    /// <param name="outputFolder">The folder to write (created if needed).</param>
    /// <param name="options">Format and quantization; null for float32 ONNX.</param>
    /// <returns>What was written, as a scorer will read it.</returns>
    /// <exception cref="ArgumentException">The model holds no transformer classifier, or the folder is not empty.</exception>
    /// <exception cref="NotSupportedException">The classifier cannot be written in the format asked for; the message says why and what can.</exception>
    public static ExportedTextClassifier ExportTextClassifier(this ModelOperationsCatalog catalog, ITransformer model, string outputFolder, TextClassifierExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrWhiteSpace(outputFolder);
        options ??= new TextClassifierExportOptions();
        var classifier = Flatten(model).OfType<TextClassificationTransformer>().LastOrDefault()
            ?? throw new ArgumentException($"The model holds no {nameof(TextClassificationTransformer)}: export takes a classifier fitted by EncoderClassifier or DecoderClassifier, or a pipeline ending in one.", nameof(model));
        if (Directory.Exists(outputFolder) && Directory.EnumerateFileSystemEntries(outputFolder).Any() && !options.Overwrite)
        {
            throw new ArgumentException($"The output folder '{outputFolder}' is not empty. Choose an empty or new folder, or set {nameof(TextClassifierExportOptions.Overwrite)}.", nameof(outputFolder));
        }

        if (options.QuantizeInt8 && options.Format != TextClassifierExportFormat.Onnx)
        {
            throw new NotSupportedException("int8 quantization applies to the ONNX format; a HuggingFace folder keeps float32 weights.");
        }

        Directory.CreateDirectory(outputFolder);
        switch (classifier.Classifier)
        {
            case HeadClassificationModel head:
                WriteHead(classifier, head.Inner, outputFolder, options);
                break;
            case PromptClassificationModel prompt when options.Format == TextClassifierExportFormat.HuggingFace:
                prompt.Inner.Save(outputFolder);
                ExportedTextClassifier.Write(outputFolder, classifier, prompt.Inner.Kind, prompt.Inner.MaxLength, options.Format, [], quantized: false);
                break;
            case PromptClassificationModel:
                throw new NotSupportedException("A prompt classifier (label words scored by a language-model head) exports to the HuggingFace format only: " +
                    "its scores come from the template, demonstrations and calibration around the network, which an ONNX graph of token ids does not carry. " +
                    "Export it with the HuggingFace format, or train with the head strategy to export ONNX.");
            default:
                throw new NotSupportedException($"The '{classifier.ModelFormat}' classifier is not one of this library's transformer classifiers; it exports through its own SaveTo.");
        }

        return ExportedTextClassifier.Read(outputFolder);
    }

    private static void WriteHead(TextClassificationTransformer model, HeadClassifier classifier, string folder, TextClassifierExportOptions options)
    {
        var network = classifier.Model;
        var config = network.Config;
        // The HuggingFace class that loads this folder, whatever the checkpoint it started from was (a bare BertModel, say).
        var json = (JsonObject)config.Json.DeepClone();
        json["architectures"] = new JsonArray(ArchitectureName(config.Family));
        var configText = json.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true });

        IReadOnlyList<string> inputs = [];
        if (options.Format == TextClassifierExportFormat.Onnx)
        {
            var (onnx, _) = OnnxClassifierWriter.Build(network, options.QuantizeInt8);
            OnnxClassifierWriter.Save(onnx, Path.Combine(folder, ExportedTextClassifier.OnnxFileName));
            File.WriteAllText(Path.Combine(folder, "config.json"), configText);
            classifier.Tokenizer.SaveTo(folder);
            inputs = OnnxClassifierWriter.InputNames(config.Family);
        }
        else
        {
            classifier.Save(folder);
            File.WriteAllText(Path.Combine(folder, "config.json"), configText);
        }

        ExportedTextClassifier.Write(folder, model, classifier.Kind, classifier.MaxLength, options.Format, inputs, options.QuantizeInt8);
    }

    private static string ArchitectureName(ModelFamily family) => family switch
    {
        ModelFamily.Bert => "BertForSequenceClassification",
        ModelFamily.Roberta => "RobertaForSequenceClassification",
        ModelFamily.DistilBert => "DistilBertForSequenceClassification",
        _ => "GPT2ForSequenceClassification",
    };

    private static IEnumerable<ITransformer> Flatten(ITransformer model) =>
        model is IEnumerable<ITransformer> chain ? chain.SelectMany(Flatten) : [model];
}
