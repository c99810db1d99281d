using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNetTransformerExtensions.MLNet;

/// <summary>A <see cref="SentenceEmbeddingTransformer"/> bound to one input schema: the input's columns, then the vector column.</summary>
internal sealed class SentenceEmbeddingBinding : IBatchedTextBinding
{
    public SentenceEmbeddingBinding(SentenceEmbeddingTransformer parent, DataViewSchema input)
    {
        TextClassificationSchema.CheckText(input, parent.InputColumnName, "Text");
        Parent = parent;
        Input = input;
        Text = input[parent.InputColumnName];
        var builder = new DataViewSchema.Builder();
        builder.AddColumns(input);
        builder.AddColumn(parent.OutputColumnName, new VectorDataViewType(NumberDataViewType.Single, parent.Dimension));
        Output = builder.ToSchema();
    }

    public SentenceEmbeddingTransformer Parent { get; }

    public DataViewSchema Input { get; }

    public DataViewSchema Output { get; }

    public DataViewSchema.Column Text { get; }

    public DataViewSchema.Column? SecondText => null;

    public IEnumerable<DataViewSchema.Column> TextColumns => [Text];

    public int BatchSize => Parent.BatchSize;

    /// <summary>The vector column follows the input's, so input column i is output column i (a same-named input column is hidden).</summary>
    public bool IsOutput(int column) => column >= Input.Count;

    public Delegate MakeOutputGetter(int column, Func<float[]> values) =>
        (ValueGetter<VBuffer<float>>)((ref VBuffer<float> destination) =>
        {
            var vector = values();
            var editor = VBufferEditor.Create(ref destination, vector.Length);
            vector.CopyTo(editor.Values);
            destination = editor.Commit();
        });

    public float[][] Compute(IReadOnlyList<string> texts, IReadOnlyList<string>? secondTexts) => Parent.Embed(texts);
}
