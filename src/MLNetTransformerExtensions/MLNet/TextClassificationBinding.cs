using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNetTransformerExtensions.MLNet;

/// <summary>
/// A transformer bound to one input schema: the output schema (every input column, then the outputs),
/// where the texts are, and how each output is computed from a row of class probabilities.
/// </summary>
internal sealed class TextClassificationBinding : IBatchedTextBinding
{
    public TextClassificationBinding(TextClassificationTransformer parent, DataViewSchema input)
    {
        TextClassificationSchema.CheckTextColumns(input, parent.Columns);
        Parent = parent;
        Input = input;
        Text = input[parent.Columns.Text];
        SecondText = parent.Columns.SecondText is { } second ? input[second] : null;

        var builder = new DataViewSchema.Builder();
        builder.AddColumns(input);
        builder.AddColumns(TextClassificationSchema.OutputColumns(input, parent.Columns, parent.Labels));
        Output = builder.ToSchema();
    }

    public TextClassificationTransformer Parent { get; }

    public int BatchSize => Parent.BatchSize;

    public float[][] Compute(IReadOnlyList<string> texts, IReadOnlyList<string>? secondTexts) => Parent.Predict(texts, secondTexts);

    public DataViewSchema Input { get; }

    public DataViewSchema Output { get; }

    public DataViewSchema.Column Text { get; }

    public DataViewSchema.Column? SecondText { get; }

    /// <summary>Output columns follow the input's, so input column i is output column i.</summary>
    public bool IsOutput(int column) => column >= Input.Count;

    /// <summary>The input columns the outputs are computed from.</summary>
    public IEnumerable<DataViewSchema.Column> TextColumns => SecondText is { } second ? [Text, second] : [Text];

    /// <summary>
    /// A getter for output column <paramref name="column"/> that reads the current row's probabilities
    /// from <paramref name="probabilities"/>.
    /// </summary>
    public Delegate MakeOutputGetter(int column, Func<float[]> probabilities)
    {
        var name = Output[column].Name;
        var columns = Parent.Columns;
        if (columns.Task == TextClassificationTask.Multiclass)
        {
            if (name == columns.Score)
            {
                return (ValueGetter<VBuffer<float>>)((ref VBuffer<float> destination) =>
                {
                    var row = probabilities();
                    var editor = VBufferEditor.Create(ref destination, row.Length);
                    row.CopyTo(editor.Values);
                    destination = editor.Commit();
                });
            }

            return (ValueGetter<uint>)((ref uint destination) => destination = PredictedKey(probabilities()));
        }

        if (name == columns.Score)
        {
            return (ValueGetter<float>)((ref float destination) => destination = LogOdds(probabilities()));
        }

        if (name == columns.Probability)
        {
            return (ValueGetter<float>)((ref float destination) => destination = probabilities()[1]);
        }

        return (ValueGetter<bool>)((ref bool destination) => destination = LogOdds(probabilities()) > 0);
    }

    /// <summary>The 1-based key of the most probable class (the first on ties), or 0 (missing) when every probability is NaN.</summary>
    internal static uint PredictedKey(float[] probabilities)
    {
        var best = -1;
        for (var i = 0; i < probabilities.Length; i++)
        {
            if (!float.IsNaN(probabilities[i]) && (best < 0 || probabilities[i] > probabilities[best]))
            {
                best = i;
            }
        }

        return (uint)(best + 1);
    }

    /// <summary>
    /// ML.NET's binary Score is a margin, positive for <see langword="true"/>: log(p(true) / p(false)),
    /// with the probabilities kept off zero so the margin stays finite.
    /// </summary>
    internal static float LogOdds(float[] probabilities)
    {
        const double Floor = 1e-30;
        return (float)(Math.Log(Math.Max(probabilities[1], Floor)) - Math.Log(Math.Max(probabilities[0], Floor)));
    }
}
