namespace MLNetTransformerExtensions.Checkpoints;

/// <summary>
/// The error raised when a checkpoint file is damaged, truncated, hostile or in a format this library does not
/// read. Its message names the file and, when one is involved, the tensor.
/// </summary>
/// <remarks>
/// An <see cref="IOException"/> (<see cref="InvalidDataException"/>, the closer fit, is sealed), so code that already
/// handles I/O failures around loading a model handles this too.
/// </remarks>
public sealed class CheckpointException : IOException
{
    /// <summary>Creates the exception for a problem in <paramref name="filePath"/>.</summary>
    /// <param name="filePath">The checkpoint file (or model folder) at fault.</param>
    /// <param name="tensorName">The tensor at fault, or null when the problem is not about one tensor.</param>
    /// <param name="problem">What is wrong and, where it helps, what to do.</param>
    /// <param name="innerException">The underlying error, if any.</param>
    public CheckpointException(string filePath, string? tensorName, string problem, Exception? innerException = null)
        : base(Describe(filePath, tensorName, problem), innerException)
    {
        FilePath = filePath;
        TensorName = tensorName;
    }

    /// <summary>The checkpoint file (or model folder) at fault.</summary>
    public string FilePath { get; }

    /// <summary>The tensor at fault, or null when the problem is not about one tensor.</summary>
    public string? TensorName { get; }

    private static string Describe(string filePath, string? tensorName, string problem) =>
        tensorName is null
            ? $"Checkpoint '{filePath}': {problem}"
            : $"Checkpoint '{filePath}', tensor '{tensorName}': {problem}";
}
