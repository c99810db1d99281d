using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNetTransformerExtensions.MLNet.Internal;

/// <summary>
/// Builds <see cref="SchemaShape.Column"/>s, whose constructor ML.NET keeps internal: an estimator's
/// <c>GetOutputSchema</c> cannot declare new columns without it.
/// </summary>
internal static class SchemaShapes
{
    /// <summary>The shape of a data view's schema, as estimators' <c>GetOutputSchema</c> take it.</summary>
    public static SchemaShape FromSchema(DataViewSchema schema) => SchemaShape.Create(schema);

    public static SchemaShape.Column Scalar(string name, DataViewType itemType, IEnumerable<SchemaShape.Column>? annotations = null) =>
        Create(name, SchemaShape.Column.VectorKind.Scalar, itemType, isKey: false, annotations);

    public static SchemaShape.Column Vector(string name, DataViewType itemType, IEnumerable<SchemaShape.Column>? annotations = null) =>
        Create(name, SchemaShape.Column.VectorKind.Vector, itemType, isKey: false, annotations);

    /// <summary>A scalar key column; <paramref name="rawType"/> is the key's underlying number type.</summary>
    public static SchemaShape.Column Key(string name, DataViewType rawType, IEnumerable<SchemaShape.Column>? annotations = null) =>
        Create(name, SchemaShape.Column.VectorKind.Scalar, rawType, isKey: true, annotations);

    private static SchemaShape.Column Create(string name, SchemaShape.Column.VectorKind kind, DataViewType itemType, bool isKey, IEnumerable<SchemaShape.Column>? annotations) =>
        new(name, kind, itemType, isKey, annotations is null ? null : new SchemaShape(annotations));
}
