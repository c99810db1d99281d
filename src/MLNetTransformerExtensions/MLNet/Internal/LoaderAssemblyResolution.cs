using System.Reflection;
using System.Runtime.CompilerServices;

namespace MLNetTransformerExtensions.MLNet.Internal;

/// <summary>
/// Lets ML.NET find this assembly by name when it loads a saved model. <c>mlContext.Model.Load</c> calls
/// <c>Assembly.Load("MLNetTransformerExtensions, Version=...")</c> for the loader the model file names; where this
/// assembly was loaded from a path rather than the application's own folder (a notebook's <c>#r "....dll"</c>, a plug-in),
/// that load fails although the assembly is already in the process. Answering with the loaded assembly fixes it.
/// </summary>
internal static class LoaderAssemblyResolution
{
    private static readonly Assembly Self = typeof(LoaderAssemblyResolution).Assembly;

#pragma warning disable CA2255 // a library module initializer is the point here: it must run before any model is loaded
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Register() => AppDomain.CurrentDomain.AssemblyResolve += Resolve;

    /// <summary>This assembly when the request names it (any version: a model names the version that saved it), else null.</summary>
    internal static Assembly? Resolve(object? sender, ResolveEventArgs args) =>
        string.Equals(new AssemblyName(args.Name).Name, Self.GetName().Name, StringComparison.OrdinalIgnoreCase) ? Self : null;
}
