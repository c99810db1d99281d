namespace MLNetTransformerExtensions.Builtin;

/// <summary>What went wrong when preparing a built-in model.</summary>
public enum BuiltinModelErrorKind
{
    /// <summary>The name starts with <c>builtin:</c> but names no built-in model.</summary>
    UnknownName,

    /// <summary>The NuGet package that embeds the model is not in the NuGet cache (restore has not fetched it).</summary>
    PackageNotFound,

    /// <summary>The package's assembly lacks the model's resources, or is not a readable assembly.</summary>
    ResourceMissing,

    /// <summary>A resource is there but its bytes are not the ones this library knows (truncated or altered).</summary>
    ResourceDamaged,

    /// <summary>The ONNX graph holds something the converter cannot map to a HuggingFace BERT model.</summary>
    UnsupportedGraph,
}

/// <summary>
/// The error raised when a built-in model cannot be prepared; its message names the model, the file at fault and
/// what to do.
/// </summary>
public sealed class BuiltinModelException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="kind">What went wrong.</param>
    /// <param name="modelName">The built-in model concerned, as the user named it.</param>
    /// <param name="message">What is wrong and what to do.</param>
    /// <param name="inner">The underlying error, if any.</param>
    public BuiltinModelException(BuiltinModelErrorKind kind, string modelName, string message, Exception? inner = null)
        : base(message, inner)
    {
        Kind = kind;
        ModelName = modelName;
    }

    /// <summary>What went wrong.</summary>
    public BuiltinModelErrorKind Kind { get; }

    /// <summary>The built-in model concerned, as the user named it.</summary>
    public string ModelName { get; }
}
