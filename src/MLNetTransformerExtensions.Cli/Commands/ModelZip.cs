using Microsoft.ML;
using Microsoft.ML.Data;
using MLNetTransformerExtensions.Export;
using MLNetTransformerExtensions.MLNet;
using MLNetTransformerExtensions.Onnx;
using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.Cli.Commands;

/// <summary>
/// The pipeline the CLI trains and saves: label → key, the classifier, predicted key → label. The classifier is a
/// transformer (<c>train</c>) or, from <c>experiment</c>, possibly one of ML.NET's classic text pipelines.
/// </summary>
internal static class ModelZip
{
    /// <summary>The key column made from a label column; the suffix lets evaluate and predict find the original column.</summary>
    private const string KeySuffix = "#key";

    public const string PredictedKey = "PredictedLabelKey";

    public static string KeyColumn(string labelColumn) => labelColumn + KeySuffix;

    /// <summary>The model, its training input schema, its transformer classifier (null for a classic pipeline), its label column and classes.</summary>
    public sealed record Loaded(ITransformer Model, DataViewSchema InputSchema, TextClassificationTransformer? Classifier, string LabelColumn, IReadOnlyList<string> ClassNames)
    {
        /// <summary>The text columns the model reads; unknown (empty) for a classic pipeline, whose featurizer does not expose them.</summary>
        public IEnumerable<(string Column, string What)> TextColumns =>
            Classifier is null ? []
            : Classifier.SecondTextColumnName is string second ? [(Classifier.TextColumnName, "text column"), (second, "second text column")]
            : [(Classifier.TextColumnName, "text column")];

        public string ScoreColumn => Classifier?.ScoreColumnName ?? "Score";

        public InferencePrecision Precision => Classifier?.InferencePrecision ?? InferencePrecision.Float32;
    }

    public static Loaded Load(MLContext ml, string path)
    {
        if (Directory.Exists(path))
        {
            return LoadExported(ml, path);
        }

        if (!File.Exists(path))
        {
            throw new CliException($"The model file '{path}' does not exist.");
        }

        ITransformer model;
        DataViewSchema schema;
        try
        {
            model = ml.Model.Load(path, out schema);
        }
        catch (Exception e) when (Readable(e) is { } reason)
        {
            throw new CliException($"'{path}' is not a readable model file ({reason.Message}). Train one with the train command.");
        }

        var classifier = Flatten(model).OfType<TextClassificationTransformer>().FirstOrDefault();
        if (classifier is not null)
        {
            var key = classifier.LabelColumnName;
            var label = key.EndsWith(KeySuffix, StringComparison.Ordinal) ? key[..^KeySuffix.Length] : key;
            return new Loaded(model, schema, classifier, label, classifier.ClassNames);
        }

        // A classic pipeline from experiment: its label is the input column whose key column it makes.
        var output = model.GetOutputSchema(schema);
        foreach (var column in schema)
        {
            if (output.GetColumnOrNull(KeyColumn(column.Name)) is { Type: KeyDataViewType } keyColumn && output.GetColumnOrNull(PredictedKey) is not null)
            {
                VBuffer<ReadOnlyMemory<char>> names = default;
                keyColumn.GetKeyValues(ref names);
                return new Loaded(model, schema, null, column.Name, [.. names.DenseValues().Select(n => n.ToString())]);
            }
        }

        throw new CliException($"'{path}' is an ML.NET model, but not one trained by this tool (it holds no transformer classifier and no '{KeySuffix}' label column).");
    }

    // ML.NET calls a component's loader by reflection and lets its exception arrive wrapped; the inner one says what is wrong.
    private static Exception? Readable(Exception e) =>
        e is System.Reflection.TargetInvocationException { InnerException: { } inner } ? Readable(inner)
        : e is InvalidOperationException or FormatException or InvalidDataException or IOException ? e
        : null;
    /// <summary>
    /// An exported ONNX folder (the export command) as the pipeline train saves: label → key in the exported class
    /// order, the ONNX Runtime scorer, predicted key → label.
    /// </summary>
    private static Loaded LoadExported(MLContext ml, string folder)
    {
        ExportedTextClassifier export;
        try
        {
            export = ExportedTextClassifier.Read(folder);
        }
        catch (InvalidDataException e)
        {
            throw new CliException($"'{folder}' is a folder but not an exported classifier: {e.Message}");
        }

        if (export.Format != TextClassifierExportFormat.Onnx)
        {
            throw new CliException($"'{folder}' is a HuggingFace export; predict and evaluate score ONNX exports (export --format onnx) or model files.");
        }

        if (export.Task != TextClassificationTask.Multiclass)
        {
            throw new CliException($"'{folder}' holds a binary classifier; the CLI scores multiclass classifiers, as train makes them. Score it with ScoreExportedTextClassifier in ML.NET.");
        }

        var key = export.LabelColumnName;
        var label = key.EndsWith(KeySuffix, StringComparison.Ordinal) ? key[..^KeySuffix.Length] : key;
        var columns = new[] { label, export.TextColumnName }.Concat(export.SecondTextColumnName is { } second ? [second] : Array.Empty<string>())
            .Distinct(StringComparer.Ordinal)
            .Select((name, index) => new TextLoader.Column(name, DataKind.String, index))
            .ToArray();
        var empty = ml.Data.CreateTextLoader(columns, hasHeader: true).Load(new MultiFileSource(null));
        var classes = ml.Data.LoadFromEnumerable(export.ClassNames.Select(n => new ClassName { Name = n }));
        var scorer = ml.Transforms.ScoreExportedTextClassifier(folder, new OnnxTextClassifierOptions
        {
            TextColumnName = export.TextColumnName,
            SecondTextColumnName = export.SecondTextColumnName,
            LabelColumnName = KeyColumn(label),
            PredictedLabelColumnName = PredictedKey,
        });
        var model = ml.Transforms.Conversion.MapValueToKey(KeyColumn(label), label, keyData: classes)
            .Append(scorer)
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel", PredictedKey))
            .Fit(empty);
        return new Loaded(model, empty.Schema, Flatten(model).OfType<TextClassificationTransformer>().Single(), label, export.ClassNames);
    }

    private sealed class ClassName
    {
        public string Name { get; set; } = "";
    }

    /// <summary>Scores in <paramref name="precision"/> when one is given; otherwise as the model file says.</summary>
    public static void UsePrecision(Loaded loaded, InferencePrecision? precision)
    {
        if (precision is not { } chosen)
        {
            return;
        }

        if (loaded.Classifier is null)
        {
            throw new CliException("--precision applies to transformer models; this model is one of ML.NET's classic text pipelines.");
        }

        try
        {
            loaded.Classifier.InferencePrecision = chosen;
        }
        catch (NotSupportedException e)
        {
            throw new CliException(e.Message);
        }
    }

    /// <summary>
    /// Saves atomically: into a temporary file beside the destination, flushed to disk, then renamed over it. A crash
    /// or an error (a full disk) leaves the previous file, or none, at the destination, never a partial one.
    /// </summary>
    /// <param name="ml">The context.</param>
    /// <param name="model">The model.</param>
    /// <param name="schema">The model's input schema.</param>
    /// <param name="path">The model file to create or replace.</param>
    /// <param name="createTemporary">Opens the temporary file; tests make it fail part-way.</param>
    public static void Save(MLContext ml, ITransformer model, DataViewSchema schema, string path, Func<string, Stream>? createTemporary = null)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var temporary = full + $".{Environment.ProcessId}.tmp";
        try
        {
            using (var file = createTemporary?.Invoke(temporary) ?? new FileStream(temporary, FileMode.Create, FileAccess.ReadWrite, FileShare.None))
            {
                ml.Model.Save(model, schema, file);
                (file as FileStream)?.Flush(flushToDisk: true);
            }

            File.Move(temporary, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary))
            {
                File.Delete(temporary);
            }
        }
    }

    /// <summary>
    /// Labels in the data that the model never saw in training are an error naming the row: the evaluator would
    /// otherwise count them as missing.
    /// </summary>
    public static void CheckLabels(MLContext ml, TabularData data, string labelColumn, IReadOnlyList<string> known)
    {
        var set = known.ToHashSet(StringComparer.Ordinal);
        var values = data.Read(ml, labelColumn);
        for (var i = 0; i < values.Count; i++)
        {
            if (string.IsNullOrWhiteSpace(values[i]))
            {
                throw new CliException($"{data.FileName} row {i + 1} (line {i + 2}): the label column '{labelColumn}' is empty; every row needs a label.");
            }

            if (!set.Contains(values[i]))
            {
                throw new CliException($"{data.FileName} row {i + 1} (line {i + 2}): the label '{values[i]}' was not among the training labels ({string.Join(", ", known)}).");
            }
        }
    }

    public static TextClassificationTransformer Classifier(ITransformer model) =>
        Flatten(model).OfType<TextClassificationTransformer>().First();

    private static IEnumerable<ITransformer> Flatten(ITransformer model) =>
        model is IEnumerable<ITransformer> chain ? chain.SelectMany(Flatten) : [model];
}
