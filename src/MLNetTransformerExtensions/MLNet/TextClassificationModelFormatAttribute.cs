namespace MLNetTransformerExtensions.MLNet;

/// <summary>
/// Declares, on an assembly, which <see cref="ITextClassificationModelLoader"/> loads the classifiers of a format.
/// </summary>
/// <remarks>
/// A saved model records the format and the simple name of the assembly that declares it; loading looks
/// for the declaration in that assembly first, then in every assembly already loaded. Format names are
/// part of the model file format: never rename one that has shipped.
/// </remarks>
/// <example>
/// <code>
/// [assembly: TextClassificationModelFormat("encoder-head", typeof(EncoderClassifierLoader))]
/// </code>
/// </example>
/// <param name="format">The format string stored in saved models, for example <c>"encoder-head"</c>.</param>
/// <param name="loaderType">A type implementing <see cref="ITextClassificationModelLoader"/> with a public parameterless constructor.</param>
[AttributeUsage(AttributeTargets.Assembly, AllowMultiple = true)]
public sealed class TextClassificationModelFormatAttribute(string format, Type loaderType) : Attribute
{
    /// <summary>The format string stored in saved models.</summary>
    public string Format { get; } = format;

    /// <summary>The type that loads classifiers of this format.</summary>
    public Type LoaderType { get; } = loaderType;
}
