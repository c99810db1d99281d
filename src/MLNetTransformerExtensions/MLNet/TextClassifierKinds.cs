using System.Reflection;

namespace MLNetTransformerExtensions.MLNet;

/// <summary>
/// Loads a classifier from the folder its <see cref="ITextClassifier.SaveTo"/> wrote. Named by a
/// <see cref="TextClassifierKindAttribute"/> so that a saved ML.NET model can be loaded again.
/// </summary>
/// <remarks>
/// Implementations need a public parameterless constructor. <see cref="Load"/> must read everything it
/// needs before it returns: the folder is a temporary copy, deleted right after.
/// </remarks>
public interface ITextClassifierLoader
{
    /// <summary>Loads the classifier saved in <paramref name="folder"/>.</summary>
    /// <param name="folder">A folder holding exactly the files <see cref="ITextClassifier.SaveTo"/> wrote.</param>
    /// <returns>The classifier, ready to predict.</returns>
    ITextClassifier Load(string folder);
}

/// <summary>
/// Declares, on an assembly, which <see cref="ITextClassifierLoader"/> loads the classifiers of a kind.
/// </summary>
/// <remarks>
/// A saved model records the kind and the simple name of the assembly that declares it; loading looks
/// for the declaration in that assembly first, then in every assembly already loaded. Kind strings are
/// part of the model file format: never rename one that has shipped.
/// </remarks>
/// <example>
/// <code>
/// [assembly: TextClassifierKind("encoder-head", typeof(EncoderClassifierLoader))]
/// </code>
/// </example>
/// <param name="kind">The kind string stored in saved models, for example <c>"encoder-head"</c>.</param>
/// <param name="loaderType">A type implementing <see cref="ITextClassifierLoader"/> with a public parameterless constructor.</param>
[AttributeUsage(AttributeTargets.Assembly, AllowMultiple = true)]
public sealed class TextClassifierKindAttribute(string kind, Type loaderType) : Attribute
{
    /// <summary>The kind string stored in saved models.</summary>
    public string Kind { get; } = kind;

    /// <summary>The type that loads classifiers of this kind.</summary>
    public Type LoaderType { get; } = loaderType;
}

/// <summary>Finds the loader declared for a classifier kind.</summary>
internal static class TextClassifierKinds
{
    /// <summary>
    /// Finds where <paramref name="kind"/> is declared, searching <paramref name="preferred"/> first and
    /// then every loaded assembly; throws when no assembly declares it.
    /// </summary>
    public static Assembly FindDeclaringAssembly(string kind, IEnumerable<Assembly> preferred)
    {
        foreach (var assembly in preferred.Concat(AppDomain.CurrentDomain.GetAssemblies()).Distinct())
        {
            if (FindAttribute(assembly, kind) is not null)
            {
                return assembly;
            }
        }

        throw new InvalidOperationException(
            $"No assembly declares the text classifier kind '{kind}', so a model trained with it could not be loaded again. " +
            $"Add [assembly: TextClassifierKind(\"{kind}\", typeof(YourLoader))] " +
            "to the assembly that defines the classifier.");
    }

    /// <summary>Creates the loader for <paramref name="kind"/>, looking in the assembly named <paramref name="assemblyName"/> first.</summary>
    public static ITextClassifierLoader CreateLoader(string kind, string assemblyName)
    {
        var attribute = FindAttribute(TryLoad(assemblyName), kind)
            ?? AppDomain.CurrentDomain.GetAssemblies().Select(a => FindAttribute(a, kind)).FirstOrDefault(a => a is not null)
            ?? throw new InvalidOperationException(
                $"The model needs a text classifier of kind '{kind}', declared in assembly '{assemblyName}', " +
                "but no loaded assembly declares that kind. Reference the assembly that defines it (or load it) before loading the model.");

        if (!typeof(ITextClassifierLoader).IsAssignableFrom(attribute.LoaderType))
        {
            throw new InvalidOperationException(
                $"The loader type '{attribute.LoaderType.FullName}' declared for text classifier kind '{kind}' does not implement {nameof(ITextClassifierLoader)}.");
        }

        if (attribute.LoaderType.GetConstructor(Type.EmptyTypes) is not { } constructor)
        {
            throw new InvalidOperationException(
                $"The loader type '{attribute.LoaderType.FullName}' declared for text classifier kind '{kind}' needs a public parameterless constructor.");
        }

        return (ITextClassifierLoader)constructor.Invoke(null);
    }

    private static TextClassifierKindAttribute? FindAttribute(Assembly? assembly, string kind)
    {
        if (assembly is null || assembly.IsDynamic)
        {
            return null;
        }

        try
        {
            return assembly.GetCustomAttributes<TextClassifierKindAttribute>().FirstOrDefault(a => a.Kind == kind);
        }
        catch (Exception e) when (e is FileNotFoundException or FileLoadException or TypeLoadException)
        {
            // An unrelated assembly whose other attributes cannot be resolved: it declares no kind we can use.
            return null;
        }
    }

    private static Assembly? TryLoad(string assemblyName)
    {
        try
        {
            return Assembly.Load(new AssemblyName(assemblyName));
        }
        catch (Exception e) when (e is FileNotFoundException or FileLoadException or BadImageFormatException)
        {
            return null;
        }
    }
}
