using System.Text.Json;
using System.Text.Json.Nodes;
using MLNetTransformerExtensions.MLNet;
using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.Export;

/// <summary>
/// What an exported classifier folder holds, as its <c>mlnet_transformers.json</c> records it: the format, the model
/// family, the task and classes, the columns it was trained on, and for ONNX the graph's file and inputs. Scorers
/// (the <c>MLNetTransformerExtensions.Onnx</c> package, the CLI) read it to score the folder as the trainer did.
/// </summary>
public sealed class ExportedTextClassifier
{
    /// <summary>The settings file's name, shared with the classifier folders this library saves.</summary>
    public const string SettingsFileName = HeadClassifier.SettingsFile;

    /// <summary>The ONNX graph's file name.</summary>
    public const string OnnxFileName = "model.onnx";

    /// <summary>The ONNX graph's output: class logits, float (batch, classes).</summary>
    public const string LogitsOutputName = "logits";

    private ExportedTextClassifier(string folder)
    {
        Folder = folder;
    }

    /// <summary>The folder.</summary>
    public string Folder { get; }

    /// <summary>ONNX or HuggingFace.</summary>
    public TextClassifierExportFormat Format { get; private init; }

    /// <summary>The model family (what inputs the graph takes).</summary>
    public ModelFamily Family { get; private init; }

    /// <summary>Multiclass or binary: which columns a scorer adds.</summary>
    public TextClassificationTask Task { get; private init; }

    /// <summary>Class names in logit order (for binary tasks <c>False</c>, <c>True</c>).</summary>
    public IReadOnlyList<string> ClassNames { get; private init; } = [];

    /// <summary>Longest input in tokens, special tokens included; longer inputs are truncated.</summary>
    public int MaxLength { get; private init; }

    /// <summary>The text column the classifier was trained on.</summary>
    public string TextColumnName { get; private init; } = TextClassificationOptions.Defaults.TextColumnName;

    /// <summary>The second text column of a text-pair classifier, or <see langword="null"/>.</summary>
    public string? SecondTextColumnName { get; private init; }

    /// <summary>The label column the classifier was trained on (a key column for multiclass tasks).</summary>
    public string LabelColumnName { get; private init; } = TextClassificationOptions.Defaults.LabelColumnName;

    /// <summary>The ONNX graph's inputs in order (<c>input_ids</c>, <c>attention_mask</c>[, <c>token_type_ids</c>]); empty for HuggingFace folders.</summary>
    public IReadOnlyList<string> OnnxInputNames { get; private init; } = [];

    /// <summary>Whether the ONNX graph's linear layers are int8.</summary>
    public bool IsQuantized { get; private init; }

    /// <summary>The ONNX graph's path.</summary>
    public string OnnxPath => Path.Combine(Folder, OnnxFileName);

    /// <summary>Reads an exported folder's settings.</summary>
    /// <param name="folder">A folder written by <see cref="TextClassifierExportCatalog.ExportTextClassifier"/>.</param>
    /// <returns>What it holds.</returns>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="InvalidDataException">The folder is not an exported classifier; the message says what is missing.</exception>
    public static ExportedTextClassifier Read(string folder)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        if (!Directory.Exists(folder))
        {
            throw new DirectoryNotFoundException($"The exported classifier folder '{folder}' does not exist.");
        }

        var path = Path.Combine(folder, SettingsFileName);
        if (!File.Exists(path))
        {
            throw new InvalidDataException($"'{folder}' has no {SettingsFileName}: it is not a folder exported by ExportTextClassifier (or the CLI's export command).");
        }

        JsonObject export;
        try
        {
            export = JsonNode.Parse(File.ReadAllText(path))?["export"] as JsonObject
                ?? throw new InvalidDataException($"'{path}' has no \"export\" object: the folder is a saved classifier, not an exported one. Export it first.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{path}' is not valid JSON: {e.Message}", e);
        }

        try
        {
            var format = Enum.Parse<TextClassifierExportFormat>(Required<string>(export, "format", path), ignoreCase: true);
            var info = new ExportedTextClassifier(folder)
            {
                Format = format,
                Family = TransformerConfig.FromFolder(folder).Family,
                Task = Enum.Parse<TextClassificationTask>(Required<string>(export, "task", path), ignoreCase: true),
                ClassNames = [.. (export["class_names"] as JsonArray ?? throw Missing("class_names", path)).Select(n => n!.GetValue<string>())],
                MaxLength = Required<int>(export, "max_length", path),
                TextColumnName = Required<string>(export, "text_column", path),
                SecondTextColumnName = export["second_text_column"]?.GetValue<string>(),
                LabelColumnName = Required<string>(export, "label_column", path),
                OnnxInputNames = export["onnx_inputs"] is JsonArray inputs ? [.. inputs.Select(n => n!.GetValue<string>())] : [],
                IsQuantized = export["quantization"]?.GetValue<string>() == "int8",
            };
            if (format == TextClassifierExportFormat.Onnx && !File.Exists(info.OnnxPath))
            {
                throw new InvalidDataException($"'{folder}' is an ONNX export but has no {OnnxFileName}.");
            }

            return info;
        }
        catch (Exception e) when (e is ArgumentException or FormatException or InvalidOperationException)
        {
            throw new InvalidDataException($"'{path}': the \"export\" object is malformed ({e.Message}).", e);
        }
    }

    /// <summary>Writes the settings file of an export: the classifier's own settings (kept when the folder has them) plus the "export" object.</summary>
    internal static void Write(string folder, TextClassificationTransformer model, ClassifierKind kind, int maxLength, TextClassifierExportFormat format, IReadOnlyList<string> onnxInputs, bool quantized)
    {
        var export = new JsonObject
        {
            ["format"] = format == TextClassifierExportFormat.Onnx ? "onnx" : "huggingface",
            ["task"] = model.Task.ToString().ToLowerInvariant(),
            ["class_names"] = new JsonArray([.. model.ClassNames.Select(n => (JsonNode?)JsonValue.Create(n))]),
            ["max_length"] = maxLength,
            ["text_column"] = model.TextColumnName,
            ["second_text_column"] = model.SecondTextColumnName,
            ["label_column"] = model.LabelColumnName,
        };
        if (format == TextClassifierExportFormat.Onnx)
        {
            export["onnx_file"] = OnnxFileName;
            export["onnx_inputs"] = new JsonArray([.. onnxInputs.Select(n => (JsonNode?)JsonValue.Create(n))]);
            export["onnx_output"] = LogitsOutputName;
            export["quantization"] = quantized ? "int8" : "none";
        }

        var path = Path.Combine(folder, SettingsFileName);
        var settings = File.Exists(path) ? JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? [] : [];
        settings["kind"] = kind.ToString().ToLowerInvariant();
        settings["max_length"] = maxLength;
        settings["export"] = export;
        File.WriteAllText(path, settings.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    private static T Required<T>(JsonObject json, string key, string path) =>
        json[key] is JsonNode node ? node.GetValue<T>() : throw Missing(key, path);

    private static InvalidDataException Missing(string key, string path) =>
        new($"'{path}': the \"export\" object has no \"{key}\".");
}
