namespace MLNetTransformerExtensions.MLNet;

/// <summary>
/// Loads a classifier from the folder its <see cref="ITextClassificationModel.SaveTo"/> wrote. Named by a
/// <see cref="TextClassificationModelFormatAttribute"/> so that a saved ML.NET model can be loaded again.
/// </summary>
/// <remarks>
/// Implementations need a public parameterless constructor. <see cref="Load"/> must read everything it
/// needs before it returns: the folder is a temporary copy, deleted right after.
/// </remarks>
public interface ITextClassificationModelLoader
{
    /// <summary>Loads the classifier saved in <paramref name="folder"/>.</summary>
    /// <param name="folder">A folder holding exactly the files <see cref="ITextClassificationModel.SaveTo"/> wrote.</param>
    /// <returns>The classifier, ready to predict.</returns>
    ITextClassificationModel Load(string folder);
}
