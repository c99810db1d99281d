using Microsoft.ML;
using Microsoft.ML.Data;
using MLNetTransformerExtensions.MLNet.Internal;

namespace MLNetTransformerExtensions.MLNet;

/// <summary>
/// Input checks and output columns of a text classifier, in both of ML.NET's schema forms
/// (<see cref="DataViewSchema"/> for transformers, <see cref="SchemaShape"/> for estimators).
/// </summary>
/// <remarks>
/// The output annotations are the ones ML.NET's evaluators and <c>MapKeyToValue</c> read: score columns
/// carry ScoreColumnKind, ScoreValueKind and ScoreColumnSetId; a multiclass score carries SlotNames and
/// TrainingLabelValues; a multiclass predicted label carries the label's KeyValues; a binary probability
/// carries IsNormalized.
/// </remarks>
internal static class TextClassificationSchema
{
    internal const string SlotNamesKind = "SlotNames";
    internal const string TrainingLabelValuesKind = "TrainingLabelValues";
    internal const string ScoreColumnKindKind = "ScoreColumnKind";
    internal const string ScoreValueKindKind = "ScoreValueKind";
    internal const string ScoreColumnSetIdKind = "ScoreColumnSetId";
    internal const string IsNormalizedKind = "IsNormalized";

    private const string InputSchemaParameter = "inputSchema";

    // ML.NET gives ScoreColumnSetId this type: Key<UInt32> with the largest count.
    private static readonly KeyDataViewType s_scoreColumnSetIdType = new(typeof(uint), int.MaxValue);

    /// <summary>Checks the text column(s) a transformer reads.</summary>
    public static void CheckTextColumns(DataViewSchema schema, TextClassificationColumns columns)
    {
        CheckText(schema, columns.Text, "Text");
        if (columns.SecondText is { } second)
        {
            CheckText(schema, second, "Second text");
        }
    }

    /// <summary>Checks the columns a trainer reads and returns the label's classes.</summary>
    public static TextClassificationLabels CheckTrainingColumns(DataViewSchema schema, TextClassificationColumns columns)
    {
        CheckTextColumns(schema, columns);
        var label = Find(schema, columns.Label, "Label");
        if (columns.Task == TextClassificationTask.Binary)
        {
            if (label.Type is not BooleanDataViewType)
            {
                throw Mismatch("Label", columns.Label, "Boolean", $"{label.Type}",
                    "A binary classifier needs a Boolean label; use the multiclass trainer for other labels.");
            }

            return TextClassificationLabels.Binary;
        }

        if (label.Type is not KeyDataViewType key || key.RawType != typeof(uint))
        {
            throw Mismatch("Label", columns.Label, "Key<UInt32>", $"{label.Type}",
                $"Map the label to a key first: mlContext.Transforms.Conversion.MapValueToKey(\"{columns.Label}\").");
        }

        if (key.Count < 2 || key.Count > int.MaxValue)
        {
            throw new ArgumentOutOfRangeException(InputSchemaParameter,
                $"Label column '{columns.Label}' is a key with {key.Count} value(s); a classifier needs at least two classes.");
        }

        return TextClassificationLabels.FromKeyColumn(label);
    }

    /// <summary>Checks the text column(s) a scoring-only estimator needs, in <see cref="SchemaShape"/> form.</summary>
    public static void CheckTextShape(SchemaShape inputSchema, TextClassificationColumns columns)
    {
        CheckTextShape(inputSchema, columns.Text, "Text");
        if (columns.SecondText is { } second)
        {
            CheckTextShape(inputSchema, second, "Second text");
        }
    }

    /// <summary>Checks the input columns an estimator needs, in <see cref="SchemaShape"/> form.</summary>
    public static void CheckTrainingShape(SchemaShape inputSchema, TextClassificationColumns columns)
    {
        CheckTextShape(inputSchema, columns);
        var label = FindShape(inputSchema, columns.Label, "Label");
        if (columns.Task == TextClassificationTask.Binary)
        {
            if (label.Kind != SchemaShape.Column.VectorKind.Scalar || label.IsKey || label.ItemType is not BooleanDataViewType)
            {
                throw Mismatch("Label", columns.Label, "Boolean", Describe(label),
                    "A binary classifier needs a Boolean label; use the multiclass trainer for other labels.");
            }
        }
        else if (label.Kind != SchemaShape.Column.VectorKind.Scalar || !label.IsKey || label.ItemType.RawType != typeof(uint))
        {
            throw Mismatch("Label", columns.Label, "Key<UInt32>", Describe(label),
                $"Map the label to a key first: mlContext.Transforms.Conversion.MapValueToKey(\"{columns.Label}\").");
        }
    }

    /// <summary>The columns a transformer adds to <paramref name="input"/>, with their annotations.</summary>
    public static DataViewSchema.DetachedColumn[] OutputColumns(DataViewSchema input, TextClassificationColumns columns, TextClassificationLabels labels)
    {
        var setId = NextScoreColumnSetId(input);
        if (columns.Task == TextClassificationTask.Binary)
        {
            var probability = ScoreAnnotations("BinaryClassification", "Probability", setId);
            probability.AddPrimitiveValue(IsNormalizedKind, BooleanDataViewType.Instance, true);
            return
            [
                new(columns.Score, NumberDataViewType.Single, ScoreAnnotations("BinaryClassification", "Score", setId).ToAnnotations()),
                new(columns.Probability!, NumberDataViewType.Single, probability.ToAnnotations()),
                new(columns.PredictedLabel, BooleanDataViewType.Instance, ScoreAnnotations("BinaryClassification", "PredictedLabel", setId).ToAnnotations()),
            ];
        }

        var score = ScoreAnnotations("MulticlassClassification", "Score", setId);
        if (labels.KeyValuesType is not null)
        {
            var names = labels.ClassNames.Select(n => n.AsMemory()).ToArray();
            score.Add(SlotNamesKind, new VectorDataViewType(TextDataViewType.Instance, names.Length),
                (ref VBuffer<ReadOnlyMemory<char>> destination) => new VBuffer<ReadOnlyMemory<char>>(names.Length, names).CopyTo(ref destination));
            labels.AddKeyValues(score, TrainingLabelValuesKind);
        }

        var predicted = ScoreAnnotations("MulticlassClassification", "PredictedLabel", setId);
        labels.AddKeyValues(predicted, TextClassificationLabels.KeyValuesKind);
        return
        [
            new(columns.Score, new VectorDataViewType(NumberDataViewType.Single, labels.ClassCount), score.ToAnnotations()),
            new(columns.PredictedLabel, new KeyDataViewType(typeof(uint), labels.ClassCount), predicted.ToAnnotations()),
        ];
    }

    /// <summary>The output schema in <see cref="SchemaShape"/> form: the input's columns, then the outputs.</summary>
    /// <param name="input">The input shape.</param>
    /// <param name="columns">The columns.</param>
    /// <param name="knownKeyValues">The item type of the class names when they are known without a label column (a pretrained classifier); null to read the label column's.</param>
    public static SchemaShape OutputShape(SchemaShape input, TextClassificationColumns columns, DataViewType? knownKeyValues = null)
    {
        var result = input.ToDictionary(c => c.Name);
        if (columns.Task == TextClassificationTask.Binary)
        {
            result[columns.Score] = SchemaShapes.Scalar(columns.Score, NumberDataViewType.Single, ScoreShapes());
            result[columns.Probability!] = SchemaShapes.Scalar(columns.Probability!, NumberDataViewType.Single,
                [.. ScoreShapes(), SchemaShapes.Scalar(IsNormalizedKind, BooleanDataViewType.Instance)]);
            result[columns.PredictedLabel] = SchemaShapes.Scalar(columns.PredictedLabel, BooleanDataViewType.Instance, ScoreShapes());
            return new SchemaShape(result.Values);
        }

        // The label's KeyValues annotation, if any, says the item type of the key values.
        var keyValues = knownKeyValues ?? FindShapeOrNull(FindShape(input, columns.Label, "Label").Annotations, TextClassificationLabels.KeyValuesKind)?.ItemType;
        var scoreAnnotations = ScoreShapes();
        var predictedAnnotations = ScoreShapes();
        if (keyValues is not null)
        {
            scoreAnnotations.Add(SchemaShapes.Vector(SlotNamesKind, TextDataViewType.Instance));
            scoreAnnotations.Add(SchemaShapes.Vector(TrainingLabelValuesKind, keyValues));
            predictedAnnotations.Add(SchemaShapes.Vector(TextClassificationLabels.KeyValuesKind, keyValues));
        }

        result[columns.Score] = SchemaShapes.Vector(columns.Score, NumberDataViewType.Single, scoreAnnotations);
        result[columns.PredictedLabel] = SchemaShapes.Key(columns.PredictedLabel, NumberDataViewType.UInt32, predictedAnnotations);
        return new SchemaShape(result.Values);
    }

    /// <summary>One more than the largest ScoreColumnSetId already in the schema, as ML.NET's scorers number them.</summary>
    private static uint NextScoreColumnSetId(DataViewSchema input)
    {
        uint max = 0;
        foreach (var column in input)
        {
            if (column.Annotations.Schema.GetColumnOrNull(ScoreColumnSetIdKind) is { Type: KeyDataViewType { RawType: var raw } } && raw == typeof(uint))
            {
                uint id = 0;
                column.Annotations.GetValue(ScoreColumnSetIdKind, ref id);
                max = Math.Max(max, id);
            }
        }

        return checked(max + 1);
    }

    private static DataViewSchema.Annotations.Builder ScoreAnnotations(string columnKind, string valueKind, uint setId)
    {
        var builder = new DataViewSchema.Annotations.Builder();
        builder.AddPrimitiveValue(ScoreColumnKindKind, TextDataViewType.Instance, columnKind.AsMemory());
        builder.AddPrimitiveValue(ScoreValueKindKind, TextDataViewType.Instance, valueKind.AsMemory());
        builder.AddPrimitiveValue(ScoreColumnSetIdKind, s_scoreColumnSetIdType, setId);
        return builder;
    }

    private static List<SchemaShape.Column> ScoreShapes() =>
    [
        SchemaShapes.Scalar(ScoreColumnKindKind, TextDataViewType.Instance),
        SchemaShapes.Scalar(ScoreValueKindKind, TextDataViewType.Instance),
        SchemaShapes.Key(ScoreColumnSetIdKind, NumberDataViewType.UInt32),
    ];

    public static void CheckText(DataViewSchema schema, string name, string role)
    {
        var column = Find(schema, name, role);
        if (column.Type is not TextDataViewType)
        {
            throw Mismatch(role, name, "String", $"{column.Type}", "Each row needs one text; convert or concatenate the column first.");
        }
    }

    public static void CheckTextShape(SchemaShape schema, string name, string role)
    {
        var column = FindShape(schema, name, role);
        if (column.Kind != SchemaShape.Column.VectorKind.Scalar || column.IsKey || column.ItemType is not TextDataViewType)
        {
            throw Mismatch(role, name, "String", Describe(column), "Each row needs one text; convert or concatenate the column first.");
        }
    }

    private static DataViewSchema.Column Find(DataViewSchema schema, string name, string role) =>
        schema.GetColumnOrNull(name) ?? throw new ArgumentOutOfRangeException(InputSchemaParameter,
            $"{role} column '{name}' is not in the input. Its columns are: {string.Join(", ", schema.Where(c => !c.IsHidden).Select(c => $"'{c.Name}'"))}.");

    private static SchemaShape.Column? FindShapeOrNull(SchemaShape? schema, string name) =>
        schema?.Where(c => c.Name == name).Select(c => (SchemaShape.Column?)c).FirstOrDefault();

    private static SchemaShape.Column FindShape(SchemaShape schema, string name, string role) =>
        FindShapeOrNull(schema, name) ?? throw new ArgumentOutOfRangeException(InputSchemaParameter,
            $"{role} column '{name}' is not in the input. Its columns are: {string.Join(", ", schema.Select(c => $"'{c.Name}'"))}.");

    private static ArgumentOutOfRangeException Mismatch(string role, string name, string expected, string actual, string advice) =>
        new(InputSchemaParameter, $"{role} column '{name}' has type {actual}; expected {expected}. {advice}");

    private static string Describe(SchemaShape.Column column)
    {
        var item = column.IsKey ? $"Key<{column.ItemType}>" : $"{column.ItemType}";
        return column.Kind switch
        {
            SchemaShape.Column.VectorKind.Vector => $"Vector<{item}>",
            SchemaShape.Column.VectorKind.VariableVector => $"Vector<{item}> (variable size)",
            _ => item,
        };
    }
}
