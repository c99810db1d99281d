using System.Reflection;
using MLNetTransformerExtensions.MLNet;

// The model formats this library writes, and the loaders that read them back.
[assembly: TextClassificationModelFormat(HeadClassificationModel.Format, typeof(HeadClassificationModelLoader))]
[assembly: TextClassificationModelFormat(PromptClassificationModel.Format, typeof(PromptClassificationModelLoader))]
[assembly: TextClassificationModelFormat(ChatClassificationModel.Format, typeof(ChatClassificationModelLoader))]
[assembly: TextClassificationModelFormat(SetFitClassificationModel.Format, typeof(SetFitClassificationModelLoader))]

namespace MLNetTransformerExtensions.MLNet;

/// <summary>Finds the loader declared for a classifier format.</summary>
internal static class TextClassificationModelFormats
{
    /// <summary>
    /// Finds where <paramref name="format"/> is declared, searching <paramref name="preferred"/> first and
    /// then every loaded assembly; throws when no assembly declares it.
    /// </summary>
    public static Assembly FindDeclaringAssembly(string format, IEnumerable<Assembly> preferred)
    {
        foreach (var assembly in preferred.Concat(AppDomain.CurrentDomain.GetAssemblies()).Distinct())
        {
            if (FindAttribute(assembly, format) is not null)
            {
                return assembly;
            }
        }

        throw new InvalidOperationException(
            $"No assembly declares the text classifier format '{format}', so a model trained with it could not be loaded again. " +
            $"Add [assembly: TextClassificationModelFormat(\"{format}\", typeof(YourLoader))] " +
            "to the assembly that defines the classifier.");
    }

    /// <summary>Creates the loader for <paramref name="format"/>, looking in the assembly named <paramref name="assemblyName"/> first.</summary>
    public static ITextClassificationModelLoader CreateLoader(string format, string assemblyName)
    {
        var attribute = FindAttribute(TryLoad(assemblyName), format)
            ?? AppDomain.CurrentDomain.GetAssemblies().Select(a => FindAttribute(a, format)).FirstOrDefault(a => a is not null)
            ?? throw new InvalidOperationException(
                $"The model needs a text classifier of format '{format}', declared in assembly '{assemblyName}', " +
                "but no loaded assembly declares that format. Reference the assembly that defines it (or load it) before loading the model.");

        if (!typeof(ITextClassificationModelLoader).IsAssignableFrom(attribute.LoaderType))
        {
            throw new InvalidOperationException(
                $"The loader type '{attribute.LoaderType.FullName}' declared for text classifier format '{format}' does not implement {nameof(ITextClassificationModelLoader)}.");
        }

        if (attribute.LoaderType.GetConstructor(Type.EmptyTypes) is not { } constructor)
        {
            throw new InvalidOperationException(
                $"The loader type '{attribute.LoaderType.FullName}' declared for text classifier format '{format}' needs a public parameterless constructor.");
        }

        return (ITextClassificationModelLoader)constructor.Invoke(null);
    }

    private static TextClassificationModelFormatAttribute? FindAttribute(Assembly? assembly, string format)
    {
        if (assembly is null || assembly.IsDynamic)
        {
            return null;
        }

        try
        {
            return assembly.GetCustomAttributes<TextClassificationModelFormatAttribute>().FirstOrDefault(a => a.Format == format);
        }
        catch (Exception e) when (e is FileNotFoundException or FileLoadException or TypeLoadException)
        {
            // An unrelated assembly whose other attributes cannot be resolved: it declares no format we can use.
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
